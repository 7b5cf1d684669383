"""The store without a network: the not-due rule against every reporting day the simulator's
calendar makes, argument checks, and reading an empty or closed store."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from aiomoomoo import Market, ShortInterestStore, next_due
from aiomoomoo.testing import BUILTIN_PROFILES, HkRow, UsRow, generate_history


@pytest.mark.parametrize(
    ("market", "newest", "due"),
    [
        # US: a settlement date's row is followed by the next 15th or month-end, at the earliest
        # five days before it (a weekend or holiday moves it back).
        (Market.US, dt.date(2026, 4, 30), dt.date(2026, 5, 10)),
        (Market.US, dt.date(2026, 5, 15), dt.date(2026, 5, 26)),
        (Market.US, dt.date(2026, 2, 27), dt.date(2026, 3, 10)),  # Feb 28 was a Saturday
        (Market.US, dt.date(2026, 2, 13), dt.date(2026, 2, 23)),  # Feb 15 was a Sunday
        # Off the schedule: anything later is possible, so it is due the next day.
        (Market.US, dt.date(2026, 4, 20), dt.date(2026, 4, 21)),
        # HK: one row a week, so nothing before the next Monday.
        (Market.HK, dt.date(2026, 4, 30), dt.date(2026, 5, 4)),  # a Thursday (May 1 holiday)
        (Market.HK, dt.date(2026, 4, 24), dt.date(2026, 4, 27)),
    ],
)
def test_next_due(market: Market, newest: dt.date, due: dt.date) -> None:
    assert next_due(market, newest) == due


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
def test_next_due_never_skips_a_reporting_day(code: str) -> None:
    # Every consecutive pair of rows over 27 years of the simulator's calendar (weekends and
    # holidays included): the rule must make the newer row's day due, or a sync would miss it.
    rows: list[UsRow | HkRow] = generate_history(  # type: ignore[assignment]
        code, BUILTIN_PROFILES[code], start=dt.date(2000, 1, 1), as_of=dt.date(2026, 12, 31)
    )
    market = Market[code[:2]]
    days = [dt.date.fromisoformat(str(row.timestamp_str)) for row in reversed(rows)]
    assert len(days) > 600
    for older, newer in itertools.pairwise(days):
        assert older < next_due(market, older) <= newer, (older, newer)


def test_an_empty_store(tmp_path: Path) -> None:
    with ShortInterestStore(tmp_path / "s.db") as store:
        assert store.codes() == []
        assert len(store.summary()) == 0
        latest = store.latest("US")
        assert len(latest) == 0
        assert latest.dtypes["shares_short"] == "Int64"
        assert list(store.latest().columns[:2]) == ["code", "timestamp"]
        with pytest.raises(KeyError, match=r"US\.AAPL is not in the store"):
            store.history("US.AAPL")


def test_arguments_are_checked(tmp_path: Path) -> None:
    with ShortInterestStore(tmp_path / "s.db") as store:
        with pytest.raises(ValueError, match="no timezone"):
            store.latest(as_of=dt.datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="not an ISO date-time"):
            store.latest(as_of="yesterday")
        with pytest.raises(TypeError, match="as_of must be"):
            store.latest(as_of=dt.date(2026, 1, 1))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="market must be"):
            store.latest("JP")
        with pytest.raises(ValueError, match="since 'May' is not a date"):
            store.history("US.AAPL", since="May")
        with pytest.raises(ValueError, match="US"):
            store.history("AAPL")
    with pytest.raises(TypeError, match="path must be"):
        ShortInterestStore(3)  # type: ignore[arg-type]


def test_a_closed_store_refuses_reads(tmp_path: Path) -> None:
    store = ShortInterestStore(tmp_path / "s.db")
    store.close()
    assert "closed" in repr(store)
    with pytest.raises(ValueError, match="closed"):
        store.codes()


def test_an_unclosed_store_warns(tmp_path: Path) -> None:
    store = ShortInterestStore(tmp_path / "s.db")
    with pytest.warns(ResourceWarning, match="unclosed"):
        store.__del__()
    assert "closed" in repr(store)
