"""The simulator's clock: ``as_of``, ``advance`` publishing rows as they fall due, revisions."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from aiomoomoo.testing import (
    BUILTIN_PROFILES,
    DEFAULT_AS_OF,
    NO_PUBLICATION_LAG,
    PUBLICATION_LAGS,
    HkRow,
    OpenDSimulator,
    UsRow,
    generate_history,
)
from aiomoomoo.testing._publication import published_on

from .conftest import connected
from .test_simulator import as_row, items

pytestmark = pytest.mark.anyio


def day(row: UsRow | HkRow) -> dt.date:
    assert row.timestamp_str is not None
    return dt.date.fromisoformat(row.timestamp_str)


def test_as_of_defaults_to_the_built_in_day_and_is_settable() -> None:
    assert OpenDSimulator().as_of == DEFAULT_AS_OF
    sim = OpenDSimulator(as_of=dt.date(2026, 9, 1))
    assert sim.as_of == dt.date(2026, 9, 1)
    assert day(sim.history("US.AAPL")[0]) == dt.date(2026, 8, 31)
    with pytest.raises(TypeError, match=r"as_of must be a datetime\.date"):
        OpenDSimulator(as_of="2026-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize("as_of", [dt.date(2024, 3, 3), dt.date(2027, 2, 14)])
def test_a_later_as_of_only_adds_rows(as_of: dt.date) -> None:
    # Every row depends on its day alone, so moving as_of either way never rewrites a row.
    for code, profile in BUILTIN_PROFILES.items():
        full = generate_history(code, profile, as_of=dt.date(2028, 1, 1))
        part = generate_history(code, profile, as_of=as_of)
        assert part == [r for r in full if day(r) <= as_of], code
        assert part
        assert day(part[0]) <= as_of


def test_advance_publishes_what_a_later_as_of_would_have_generated() -> None:
    stepped = OpenDSimulator(seed=4)
    before = {code: stepped.history(code) for code in stepped.codes}
    counts: dict[str, int] = dict.fromkeys(before, 0)
    for days in (1, 6, 13, 0, 45, 2, 300):
        for code, new in stepped.advance(days).items():
            counts[code] += new
    assert stepped.as_of == DEFAULT_AS_OF + dt.timedelta(days=367)
    at_once = OpenDSimulator(seed=4, as_of=stepped.as_of)
    for code, old in before.items():
        assert stepped.history(code) == at_once.history(code), code
        assert stepped.history(code)[counts[code] :] == old
    # A year: 24 FINRA settlement dates for US, 52 or 53 weekly reports for HK.
    assert {counts[c] for c in counts if c.startswith("US.")} == {24}
    assert {counts[c] for c in counts if c.startswith("HK.")} <= {52, 53}


def test_advance_follows_the_reporting_calendars() -> None:
    sim = OpenDSimulator()
    # 2026-05-01 .. 05-15: FINRA's mid-month date only; HK's weekly Fridays 05-08 and 05-15.
    published = sim.advance(15)
    assert published["US.AAPL"] == 1
    assert published["HK.00700"] == 2
    assert [r.timestamp_str for r in sim.history("US.AAPL")[:1]] == ["2026-05-15"]
    assert [r.timestamp_str for r in sim.history("HK.00700")[:2]] == ["2026-05-15", "2026-05-08"]
    # 05-16 .. 05-28: nothing for US (the month's last business day is Friday the 29th).
    assert sim.advance(13)["US.AAPL"] == 0
    assert sim.advance(1)["US.AAPL"] == 1
    assert sim.history("US.AAPL")[0].timestamp_str == "2026-05-29"
    assert sim.advance(0) == dict.fromkeys(sim.codes, 0)


def test_advance_rejects_bad_days() -> None:
    sim = OpenDSimulator()
    with pytest.raises(ValueError, match="only moves forward"):
        sim.advance(-1)
    for bad in (1.5, "3", True):
        with pytest.raises(TypeError, match="days must be an int"):
            sim.advance(bad)  # type: ignore[arg-type]
    assert sim.as_of == DEFAULT_AS_OF


async def test_advanced_rows_are_served_and_paged() -> None:
    async with OpenDSimulator(quota=None) as sim, connected(sim) as raw:
        first = await raw.short_interest("HK.00700", num=1)
        sim.advance(60)
        pages = await raw.walk("HK.00700", num=7)
        rows = [as_row(item) for page in pages for item in items(page)]
        assert rows == sim.history("HK.00700")
        assert len(rows) > 8
        assert rows[8:9] == [as_row(first.s2c.hkItemList[0])]  # 8 Fridays published


def test_advance_with_revise_changes_the_previous_newest_short_position() -> None:
    sim = OpenDSimulator()
    old_us, old_hk = sim.history("US.AAPL")[0], sim.history("HK.00700")[0]
    assert isinstance(old_us, UsRow)
    assert isinstance(old_hk, HkRow)
    sim.advance(15, revise=True)
    us = sim.history("US.AAPL")[1]
    hk = sim.history("HK.00700")[2]
    assert isinstance(us, UsRow)
    assert isinstance(hk, HkRow)
    assert (us.timestamp, hk.timestamp) == (old_us.timestamp, old_hk.timestamp)
    assert us.shares_short != old_us.shares_short
    assert old_us.shares_short is not None
    assert us.shares_short is not None
    assert 0.95 < us.shares_short / old_us.shares_short < 1.05
    assert us.days_to_cover == round(max(us.shares_short / old_us.avg_daily_share_volume, 1), 2)  # type: ignore[operator]
    assert (
        dataclasses.replace(
            us,
            shares_short=old_us.shares_short,
            short_percent=old_us.short_percent,
            days_to_cover=old_us.days_to_cover,
        )
        == old_us
    )
    assert hk.aggregated_short != old_hk.aggregated_short
    assert (
        dataclasses.replace(
            hk,
            aggregated_short=old_hk.aggregated_short,
            aggregated_short_ratio=old_hk.aggregated_short_ratio,
        )
        == old_hk
    )
    # Only that row: the rest of the history, and the new rows, are as generated.
    plain = OpenDSimulator(as_of=sim.as_of)
    assert sim.history("US.AAPL")[2:] == plain.history("US.AAPL")[2:]
    assert sim.history("US.AAPL")[0] == plain.history("US.AAPL")[0]
    # Revisions are seeded too.
    again = OpenDSimulator()
    again.advance(15, revise=True)
    assert again.history("US.AAPL") == sim.history("US.AAPL")


async def test_revise_changes_one_served_row() -> None:
    async with OpenDSimulator(quota=None) as sim, connected(sim) as raw:
        newest = sim.history("US.TSLA")[0]
        assert isinstance(newest, UsRow)
        sim.revise("US.TSLA", DEFAULT_AS_OF, shares_short=123, close_price=None)
        page = await raw.short_interest("US.TSLA", num=2)
        item = page.s2c.usItemList[0]
        assert item.sharesShort == 123
        assert not item.HasField("closePrice")
        assert as_row(page.s2c.usItemList[1]) == sim.history("US.TSLA")[1]
        assert sim.history("US.TSLA")[0] == dataclasses.replace(
            newest, shares_short=123, close_price=None
        )


def test_revise_rejects_what_is_not_there() -> None:
    sim = OpenDSimulator()
    with pytest.raises(KeyError, match="2026-04-29"):
        sim.revise("US.AAPL", dt.date(2026, 4, 29), shares_short=1)
    with pytest.raises(TypeError, match="aggregated_short"):
        sim.revise("US.AAPL", DEFAULT_AS_OF, aggregated_short=1)
    with pytest.raises(TypeError, match=r"datetime\.date"):
        sim.revise("US.AAPL", "2026-04-30", shares_short=1)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        sim.revise("US.NOSUCH", DEFAULT_AS_OF, shares_short=1)


def test_advance_leaves_given_rows_alone() -> None:
    rows = [HkRow(1777478400, "2026-04-30", 1.0, 1.0, 5, 0.1)]
    sim = OpenDSimulator(histories={"HK.00001": rows})
    published = sim.advance(30, revise=True)
    assert "HK.00001" not in published
    assert sim.history("HK.00001") == rows


# -- the publication lag ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
def test_a_lag_holds_back_exactly_the_rows_not_yet_published(code: str) -> None:
    as_of = dt.date(2026, 3, 9)
    everything = OpenDSimulator(as_of=as_of).history(code)
    lagged = OpenDSimulator(as_of=as_of, publication_lag=PUBLICATION_LAGS).history(code)
    lag = PUBLICATION_LAGS[code[:2]]
    assert lagged == [r for r in everything if published_on(day(r), lag) <= as_of]
    assert 0 < len(everything) - len(lagged) <= 2
    # The newest date served is public; the next reporting day is not yet.
    assert published_on(day(lagged[0]), lag) <= as_of
    held = everything[len(everything) - len(lagged) - 1]
    assert published_on(day(held), lag) > as_of


def test_advance_publishes_on_the_schedule_day_by_day() -> None:
    start = dt.date(2026, 2, 1)
    sim = OpenDSimulator(as_of=start, publication_lag=PUBLICATION_LAGS)
    gained: dict[dt.date, dict[str, int]] = {}
    for offset in range(1, 46):
        today = start + dt.timedelta(days=offset)
        published = sim.advance(1)
        gained[today] = {code: n for code, n in published.items() if n}
        # Always what a simulator created on this day would serve.
        fresh = OpenDSimulator(as_of=today, publication_lag=PUBLICATION_LAGS)
        for code in ("US.AAPL", "HK.00700"):
            assert sim.history(code) == fresh.history(code), (today, code)
    us_days = [d for d, codes in gained.items() if "US.AAPL" in codes]
    hk_days = [d for d, codes in gained.items() if "HK.00700" in codes]
    # The Jan 30 (Jan 31 is a Saturday), Feb 13 (Feb 15 is a Sunday) and Feb 27 settlement
    # dates, 7 weekdays on.
    assert us_days == [dt.date(2026, 2, 10), dt.date(2026, 2, 24), dt.date(2026, 3, 10)]
    # HK: each Friday's row one week later, on the next Friday.
    assert all(d.weekday() == 4 for d in hk_days)
    assert len(hk_days) == 6


def test_without_a_lag_nothing_changes() -> None:
    as_of = dt.date(2026, 3, 9)
    plain = OpenDSimulator(as_of=as_of)
    explicit = OpenDSimulator(as_of=as_of, publication_lag=NO_PUBLICATION_LAG)
    assert plain.history("US.AAPL") == explicit.history("US.AAPL")
    assert day(plain.history("US.AAPL")[0]) == dt.date(2026, 2, 27)


async def test_replies_serve_only_what_is_published() -> None:
    as_of = dt.date(2026, 3, 9)
    async with (
        OpenDSimulator(quota=None, as_of=as_of, publication_lag=PUBLICATION_LAGS) as sim,
        connected(sim) as client,
    ):
        reply = await client.short_interest("US.AAPL", num=50)
        assert reply.retType == 0
        served = [as_row(item) for item in items(reply)]
        assert served == sim.history("US.AAPL")[: len(served)]
        assert day(served[0]) == dt.date(2026, 2, 13)  # Feb 27's row is public on Mar 10


def test_a_lag_that_is_no_schedule_is_refused_by_the_simulator() -> None:
    with pytest.raises(ValueError, match="unknown market"):
        OpenDSimulator(publication_lag={"XX": 1})
