"""Reading a store without a network: an empty or closed store, argument checks, and the frames
built from rows the writer stored (the change columns, ``since``, ``as_of``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Market, ShortInterestStore
from aiomoomoo._frames import empty_frame
from aiomoomoo._security import parse_code
from aiomoomoo.store._plan import Frontier
from aiomoomoo.store._read import StoreReader
from aiomoomoo.store._write import StoreWriter


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


# -- frames from stored rows ------------------------------------------------------------------


def us(day: int, shares_short: int | None) -> tuple[Any, ...]:
    return (1_700_000_000 + day, f"2026-04-{day:02d}", shares_short, 1.5, 200, 2.0, 10.0, 9.5)


def hk(day: int, aggregated_short: int) -> tuple[Any, ...]:
    return (1_700_000_000 + day, f"2026-04-{day:02d}", aggregated_short, 0.25, 400.0, 398.0)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    """A writer on the file ``tmp_path / "s.db"``, through a connection of its own."""
    ShortInterestStore(tmp_path / "s.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db", isolation_level=None)) as db:
        yield StoreWriter(db)


def test_the_change_columns_compare_each_row_with_the_previous_period(
    tmp_path: Path, writer: StoreWriter
) -> None:
    writer.store_page(parse_code("US.AAPL"), None, [us(30, 1500), us(15, 1000), us(1, 0)], "-1")
    writer.store_page(parse_code("HK.00700"), None, [hk(24, 6000), hk(17, 5000)], "-1")
    with ShortInterestStore(tmp_path / "s.db") as store:
        aapl = store.history("US.AAPL")
        assert aapl["shares_short_previous"].tolist()[:2] == [1000, 0]
        assert aapl["shares_short_change"].tolist()[:2] == [500, 1000]
        # (current - previous) / previous * 100; nothing to divide by after a zero or at the end.
        assert aapl.loc[0, "shares_short_change_percent"] == 50.0
        assert aapl.loc[1:, "shares_short_change_percent"].isna().all()
        assert aapl.loc[2, ["shares_short_previous", "shares_short_change"]].isna().all()
        tencent = store.history("HK.00700")
        assert tencent.loc[0, "aggregated_short_previous"] == 5000
        assert tencent.loc[0, "aggregated_short_change"] == 1000
        assert tencent.loc[0, "aggregated_short_change_percent"] == 20.0
        latest = store.latest()
        assert latest["code"].tolist() == ["HK.00700", "US.AAPL"]
        assert latest.loc[0, "aggregated_short_change"] == 1000
        assert latest.loc[1, "shares_short_change"] == 500


def test_since_keeps_its_own_day(tmp_path: Path, writer: StoreWriter) -> None:
    writer.store_page(parse_code("US.AAPL"), None, [us(30, 3), us(15, 2), us(1, 1)], "-1")
    with ShortInterestStore(tmp_path / "s.db") as store:
        since = store.history("US.AAPL", since="2026-04-15")
        assert since["timestamp_str"].tolist() == ["2026-04-30", "2026-04-15"]
        assert store.history("US.AAPL", since=dt.date(2026, 4, 16))["shares_short"].tolist() == [3]


def test_as_of_at_a_revisions_instant_gives_the_new_version_only(
    tmp_path: Path, writer: StoreWriter
) -> None:
    aapl = parse_code("US.AAPL")
    writer.store_page(aapl, None, [us(30, 100), us(15, 50)], "-1")
    writer.store_page(aapl, None, [us(30, 200), us(15, 50)], "-1")
    with ShortInterestStore(tmp_path / "s.db") as store:
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            (micros,) = db.execute(
                "SELECT superseded FROM versions WHERE superseded IS NOT NULL"
            ).fetchone()
        instant = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
        at = store.history("US.AAPL", as_of=instant)
        assert at["shares_short"].tolist() == [200, 50]
        before = instant - dt.timedelta(microseconds=1)
        assert store.history("US.AAPL", as_of=before)["shares_short"].tolist() == [100, 50]
        assert store.latest("US", as_of=instant)["shares_short"].tolist() == [200]


def test_the_states_say_how_many_recent_dates_and_which_frontier_each_code_was_asked_at(
    tmp_path: Path, writer: StoreWriter
) -> None:
    # US dates 04-01..04-30 over three codes: the market's three newest are 30, 15 and 10.
    pages = {
        "US.A": [us(30, 1), us(15, 1), us(10, 1), us(1, 1)],  # all three
        "US.B": [us(15, 1), us(10, 1)],  # two
        "US.C": [us(1, 1)],  # none
        "HK.00001": [hk(24, 1), hk(17, 1)],  # HK has its own newest dates: both
    }
    for code, rows in pages.items():
        writer.store_page(parse_code(code), None, rows, "-1")
        writer.record_outcome(parse_code(code), None)
    writer.record_frontiers(
        {Market.US: (dt.date(2026, 4, 30), dt.date(2026, 5, 11))}, {"US.B": dt.date(2026, 4, 15)}
    )
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
        reader = StoreReader(db)
        states = reader.code_states(recent=True)
        assert {code: s.recent for code, s in states.items()} == {
            "US.A": 3,
            "US.B": 2,
            "US.C": 0,
            "HK.00001": 2,
        }
        assert states["US.B"].asked == dt.date(2026, 4, 15)
        assert states["US.A"].asked is None
        # Without recent=True the second pass is not made.
        assert {s.recent for s in reader.code_states().values()} == {0}
        assert reader.frontiers() == {
            Market.US: Frontier(dt.date(2026, 4, 30), dt.date(2026, 5, 11))
        }


def test_the_frames_columns_dtypes_and_rounding(tmp_path: Path, writer: StoreWriter) -> None:
    writer.store_page(parse_code("US.AAPL"), None, [us(30, 1000), us(15, 3000)], "-1")
    writer.store_page(parse_code("HK.00700"), None, [hk(24, 6000), hk(17, 5000)], "-1")
    changes = {"_previous": "Int64", "_change": "Int64", "_change_percent": "float64"}
    seen = {"first_seen": "datetime64[us, UTC]", "last_seen": "datetime64[us, UTC]"}
    with ShortInterestStore(tmp_path / "s.db") as store:
        for code, market, changed in (
            ("US.AAPL", "US", "shares_short"),
            ("HK.00700", "HK", "aggregated_short"),
        ):
            history = store.history(code)
            official = fetched_dtypes(market)
            expected = {**official, **{changed + end: t for end, t in changes.items()}, **seen}
            assert {str(c): str(t) for c, t in history.dtypes.items()} == expected
            assert list(history.columns) == list(expected)
        # FINRA's percentage, rounded to hundredths: (1000 - 3000) / 3000 * 100.
        assert store.history("US.AAPL").loc[0, "shares_short_change_percent"] == -66.67
        # Both markets: the code, the US columns, HK's own, the change columns, the seen times.
        latest = store.latest()
        hk_own = [c for c in HK_COLUMNS if c not in US_COLUMNS]
        derived = [c + end for c in ("shares_short", "aggregated_short") for end in changes]
        assert list(latest.columns) == ["code", *US_COLUMNS, *hk_own, *derived, *seen]
        assert latest.index.tolist() == [0, 1]
        assert latest.dtypes["aggregated_short_change"] == "Int64"
        assert latest.dtypes["shares_short_change_percent"] == "float64"
        assert latest.loc[0, ["shares_short", "shares_short_change"]].isna().all()


def fetched_dtypes(market: str) -> dict[str, str]:
    """The official columns and dtypes, as `fetch_short_interest` returns them."""
    return {str(c): str(t) for c, t in empty_frame(Market[market]).dtypes.items()}


def test_latest_as_of_gives_the_values_known_then(tmp_path: Path, writer: StoreWriter) -> None:
    # A backtest screening with latest(as_of=) must not see a revision made after that moment.
    aapl = parse_code("US.AAPL")
    writer.store_page(aapl, None, [us(30, 100)], "-1")
    writer.store_page(parse_code("HK.00700"), None, [hk(24, 7)], "-1")
    with ShortInterestStore(tmp_path / "s.db") as store:
        then = store.history("US.AAPL")["first_seen"].iloc[0]
    writer.store_page(aapl, None, [us(30, 200)], "-1")
    with ShortInterestStore(tmp_path / "s.db") as store:
        for market in ("US", None):
            latest = store.latest(market, as_of=then)
            assert latest.set_index("code").loc["US.AAPL", "shares_short"] == 100
        assert store.latest("US")["shares_short"].tolist() == [200]


def test_first_seen_stays_and_last_seen_moves(tmp_path: Path, writer: StoreWriter) -> None:
    # The frames show the store's times to the microsecond: one taken from a frame and given
    # back as as_of must find that version.
    def stored() -> list[pd.Timestamp]:
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            row = db.execute("SELECT first_seen, last_seen FROM versions").fetchone()
        return [pd.Timestamp(moment, unit="us", tz="UTC") for moment in row]

    def shown(store: ShortInterestStore) -> list[list[object]]:
        frames = (store.history("US.AAPL"), store.latest(), store.latest("US"))
        return [[frame.at[0, "first_seen"], frame.at[0, "last_seen"]] for frame in frames]

    aapl = parse_code("US.AAPL")
    writer.store_page(aapl, None, [us(30, 100)], "-1")
    first = stored()
    assert first[0] == first[1]
    assert first[0].microsecond or first[0].second  # a time of its own, not a rounded one
    with ShortInterestStore(tmp_path / "s.db") as store:
        assert shown(store) == [first] * 3
    time.sleep(0.002)  # the store's times have microseconds
    writer.store_page(aapl, None, [us(30, 100)], "-1")
    again = stored()
    assert again[0] == first[0]
    assert again[1] > first[1]
    with ShortInterestStore(tmp_path / "s.db") as store:
        assert shown(store) == [again] * 3


def test_the_summary_columns_and_dtypes(tmp_path: Path, writer: StoreWriter) -> None:
    writer.store_page(parse_code("US.AAPL"), None, [us(30, 100), us(15, 90)], "-1")
    writer.record_outcome(parse_code("US.AAPL"), None)
    with ShortInterestStore(tmp_path / "s.db") as store:
        summary = store.summary()
    assert list(summary.columns) == [
        "code",
        "market",
        "rows",
        "oldest",
        "newest",
        "revisions",
        "complete",
        "last_synced",
        "last_error",
    ]
    types = summary.dtypes
    assert [str(types[c]) for c in ("code", "market", "rows", "revisions", "complete")] == [
        "string",
        "string",
        "int64",
        "int64",
        "bool",
    ]
    assert isinstance(types["last_synced"], pd.DatetimeTZDtype)
    assert str(types["last_synced"].tz) == "UTC"
    row = summary.iloc[0]
    assert (row["oldest"], row["newest"], row["rows"], row["complete"]) == (
        "2026-04-15",
        "2026-04-30",
        2,
        True,
    )
