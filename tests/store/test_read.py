"""Reading a store without a network: an empty or closed store, argument checks, and the frames
built from rows the writer stored (the change columns, ``since``, ``as_of``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiomoomoo import ShortInterestStore
from aiomoomoo._security import parse_code
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
