"""The store's writer, pure: plain rows in, versions and segments out, on an in-memory file.

A page's rows and the walk's position commit in one transaction; a segment that reaches an older
one merges with it and the walk jumps to where the merged stretch continues; a row that cannot be
stored fails the page before anything is written.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aiomoomoo import ProtocolError, RequestTimeoutError
from aiomoomoo._security import Security, parse_code
from aiomoomoo.store._format import prepare
from aiomoomoo.store._read import StoreReader
from aiomoomoo.store._write import StoreWriter

AAPL = parse_code("US.AAPL")
TENCENT = parse_code("HK.00700")


def us(day: int, shares_short: int | None = 1000, *, month: int = 4) -> tuple[Any, ...]:
    """A US record of 2026-``month``-``day`` in `US_COLUMNS` order."""
    date = f"2026-{month:02d}-{day:02d}"
    return (1_700_000_000 + day, date, shares_short, 1.5, 200, 2.0, 10.0, 9.5)


def hk(day: int, aggregated_short: int = 5000) -> tuple[Any, ...]:
    """An HK record of 2026-04-``day`` in `HK_COLUMNS` order."""
    return (1_700_000_000 + day, f"2026-04-{day:02d}", aggregated_short, 0.25, 400.0, 398.0)


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        prepare(db)
        yield db


def versions(db: sqlite3.Connection, code: str = "US.AAPL") -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT printf('%d-%02d-%02d', date / 10000, date / 100 % 100, date % 100), "
        "shares_short, aggregated_short, superseded IS NOT NULL "
        "FROM versions JOIN codes ON codes.id = versions.code_id "
        "WHERE code = ? ORDER BY date DESC, first_seen",
        (code,),
    ).fetchall()


def segments(db: sqlite3.Connection, code: str = "US.AAPL") -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT high, low, next_key FROM segments WHERE code = ? ORDER BY high DESC", (code,)
    ).fetchall()


def complete(db: sqlite3.Connection, security: Security = AAPL) -> bool:
    return StoreReader(db).code_states()[security.code].complete


def test_plain_rows_become_versions_and_the_walk_a_segment(db: sqlite3.Connection) -> None:
    writer = StoreWriter(db)
    first = writer.store_page(AAPL, None, [us(30), us(15)], "k1")
    assert (first.resume_key, first.rows_new, first.rows_revised) == ("k1", 2, 0)
    assert versions(db) == [("2026-04-30", 1000, None, 0), ("2026-04-15", 1000, None, 0)]
    assert segments(db) == [("2026-04-30", "2026-04-15", "k1")]
    assert not complete(db)
    last = writer.store_page(AAPL, first.segment, [us(1)], "-1")
    assert last.segment == first.segment
    assert (last.resume_key, last.rows_new) == ("-1", 1)
    assert segments(db) == [("2026-04-30", "2026-04-01", "-1")]
    assert complete(db)
    # HK rows go into the HK columns; the US-only ones stay empty.
    writer.store_page(TENCENT, None, [hk(24)], "-1")
    assert versions(db, "HK.00700") == [("2026-04-24", None, 5000, 0)]
    assert complete(db, TENCENT)


def test_the_same_rows_again_are_seen_and_a_changed_value_is_a_revision(
    db: sqlite3.Connection,
) -> None:
    writer = StoreWriter(db)
    writer.store_page(AAPL, None, [us(30), us(15, None)], "-1")
    seen = db.execute("SELECT last_seen FROM versions ORDER BY date").fetchall()
    time.sleep(0.002)  # the store's times have microseconds
    again = writer.store_page(AAPL, None, [us(30), us(15, None)], "-1")
    assert (again.rows_new, again.rows_revised) == (0, 0)
    assert len(versions(db)) == 2
    # Every sighting moves last_seen; a missing value (None) equals itself.
    now = db.execute("SELECT last_seen FROM versions ORDER BY date").fetchall()
    assert all(later > before for (later,), (before,) in zip(now, seen, strict=True))
    revised = writer.store_page(AAPL, None, [us(30, 2000), us(15, None)], "-1")
    assert (revised.rows_new, revised.rows_revised) == (0, 1)
    assert versions(db) == [
        ("2026-04-30", 1000, None, 1),
        ("2026-04-30", 2000, None, 0),
        ("2026-04-15", None, None, 0),
    ]
    # Each revised row counts, as each new one does.
    both = writer.store_page(AAPL, None, [us(30, 3000), us(15, 10), us(1), us(2, month=3)], "-1")
    assert (both.rows_new, both.rows_revised) == (2, 2)


def test_a_walk_that_reaches_an_unfinished_backfill_jumps_to_its_saved_key(
    db: sqlite3.Connection,
) -> None:
    writer = StoreWriter(db)
    # A first sync stored two pages of a backfill, then stopped: it continues at "k3".
    page = writer.store_page(AAPL, None, [us(20), us(18)], "k2")
    writer.store_page(AAPL, page.segment, [us(16), us(14)], "k3")
    # The next sync's first page holds a new row and reaches the stored ones.
    top = writer.store_page(AAPL, None, [us(22), us(20)], "k-other")
    assert top.resume_key == "k3"
    assert (top.rows_new, top.rows_revised) == (1, 0)
    assert segments(db) == [("2026-04-22", "2026-04-14", "k3")]
    end = writer.store_page(AAPL, top.segment, [us(12)], "-1")
    assert end.resume_key == "-1"
    assert segments(db) == [("2026-04-22", "2026-04-12", "-1")]
    assert complete(db)


def test_new_rows_that_reach_a_complete_history_end_the_walk(db: sqlite3.Connection) -> None:
    writer = StoreWriter(db)
    writer.store_page(AAPL, None, [us(15), us(1)], "-1")
    page = writer.store_page(AAPL, None, [us(30), us(15)], "k9")
    assert page.resume_key == "-1"
    assert segments(db) == [("2026-04-30", "2026-04-01", "-1")]
    # A first page that does not reach the stored rows leaves a stretch to walk on.
    gap = writer.store_page(AAPL, None, [us(30, month=6), us(15, month=6)], "k1")
    assert gap.resume_key == "k1"
    assert len(segments(db)) == 2
    assert not complete(db)


def test_a_history_with_a_gap_is_not_complete_whatever_its_keys(db: sqlite3.Connection) -> None:
    # Complete means one stored stretch reaching the start of the history. OpenD's keys are
    # opaque: one that sorts before "-1" (as base64's "+" does) must not make the stretch
    # that reaches the start speak for the whole code.
    writer = StoreWriter(db)
    writer.store_page(AAPL, None, [us(15), us(1)], "-1")
    assert complete(db)
    writer.store_page(AAPL, None, [us(30, month=6), us(15, month=6)], "+AAAB")
    assert segments(db) == [
        ("2026-06-30", "2026-06-15", "+AAAB"),
        ("2026-04-15", "2026-04-01", "-1"),
    ]
    assert not complete(db)
    assert not StoreReader(db).summary().loc[0, "complete"]


def test_an_empty_last_page_ends_the_walk_and_completes_the_history(
    db: sqlite3.Connection,
) -> None:
    writer = StoreWriter(db)
    page = writer.store_page(AAPL, None, [us(30), us(15)], "k1")
    end = writer.store_page(AAPL, page.segment, [], "-1")
    assert (end.resume_key, end.rows_new) == ("-1", 0)
    assert segments(db) == [("2026-04-30", "2026-04-15", "-1")]
    assert complete(db)
    # A history without any row is complete too, with nothing to date it by.
    writer.store_page(TENCENT, None, [], "-1")
    assert complete(db, TENCENT)
    assert StoreReader(db).code_states()["HK.00700"].newest is None


def everything(db: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
    """Every row of every table, to compare a store before and after a failed page."""
    return [
        sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in ("codes", "versions", "segments", "frontiers", "asked")
    ]


@pytest.mark.parametrize(
    ("table", "statement", "walk"),
    [
        ("segments", "INSERT", "first"),  # the first page of a code never stored
        ("segments", "INSERT", "new"),  # a new walk's segment
        ("segments", "DELETE", "continued"),  # the older stretch merged into the walk's
        ("segments", "UPDATE", "continued"),  # the walk's position moved down
        ("versions", "INSERT", "continued"),  # a new row
        ("versions", "UPDATE", "continued"),  # a row seen again, or superseded
    ],
)
def test_a_page_and_the_walks_position_commit_together(
    db: sqlite3.Connection, table: str, statement: str, walk: str
) -> None:
    # A page that fails at any of its statements leaves nothing of itself behind: had its rows
    # committed without the position (or the other way round), the next sync would continue
    # from a position that does not match the rows, and could leave a gap for ever.
    writer = StoreWriter(db)
    writer.store_page(AAPL, None, [us(10), us(8)], "-1")
    walking = writer.store_page(AAPL, None, [us(30), us(28)], "k1")
    assert len(segments(db)) == 2
    before = everything(db)
    db.execute(
        f"CREATE TRIGGER fail BEFORE {statement} ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    pages = {
        "first": (TENCENT, None, [hk(24), hk(17)], "k1"),
        # New rows, a revision and a row seen again, reaching the walk below.
        "new": (AAPL, None, [us(1, month=5), us(30, 999), us(28)], "k9"),
        # New rows, a row seen again and a revision, reaching the complete stretch.
        "continued": (AAPL, walking.segment, [us(26), us(12), us(10, 999), us(8)], "k2"),
    }
    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        writer.store_page(*pages[walk])
    assert everything(db) == before
    db.execute("DROP TRIGGER fail")
    writer.store_page(*pages["continued"])
    assert segments(db) == [("2026-04-30", "2026-04-08", "-1")]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ((None, None, 1000, None, None, None, None, None), "without a date"),
        ((None, "", 1000, None, None, None, None, None), "without a date"),
        ((2**62, None, 1000, None, None, None, None, None), "timestamp 4611686018427387904"),
        ((1_700_000_000, "2026-04-30", 2**63, None, None, None, None, None), "beyond the int64"),
        ((None, "2026/04/30", 1000, None, None, None, None, None), "dated '2026/04/30'"),
        ((None, "9999-12-31", 1000, None, None, None, None, None), "dated '9999-12-31'"),
        ((1_700_000_000, "30/04/2026", 7, None, None, None, None, None), "YYYY-MM-DD"),
    ],
    ids=[
        "no-date",
        "empty-date",
        "absurd-timestamp",
        "beyond-int64",
        "slashes",
        "year-9999",
        "not-a-date",
    ],
)
def test_a_row_that_cannot_be_stored_fails_the_page_before_anything_is_written(
    db: sqlite3.Connection, record: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        StoreWriter(db).store_page(AAPL, None, [us(30), record], "k1")
    assert versions(db) == []
    assert segments(db) == []


def test_the_largest_int64_is_stored(db: sqlite3.Connection) -> None:
    StoreWriter(db).store_page(AAPL, None, [us(30, 2**63 - 1)], "-1")
    assert versions(db) == [("2026-04-30", 2**63 - 1, None, 0)]


def test_a_row_dated_by_its_timestamp_alone_gets_the_market_date(db: sqlite3.Connection) -> None:
    # Midnight in Hong Kong is the previous day in UTC: the market's own date is kept.
    midnight = 1_777_478_400  # 2026-04-30T00:00+08:00
    StoreWriter(db).store_page(TENCENT, None, [(midnight, None, 7, 0.1, 1.0, 1.0)], "-1")
    assert versions(db, "HK.00700") == [("2026-04-30", None, 7, 0)]


def test_an_outcome_is_recorded_and_a_success_clears_the_last_error(
    db: sqlite3.Connection,
) -> None:
    writer = StoreWriter(db)
    writer.record_outcome(AAPL, RequestTimeoutError("no reply in 5 s"))
    row = db.execute("SELECT last_synced, last_error FROM codes").fetchone()
    assert row == (None, "RequestTimeoutError: no reply in 5 s")
    assert StoreReader(db).code_states()["US.AAPL"].failed
    writer.record_outcome(AAPL, None)
    synced, error = db.execute("SELECT last_synced, last_error FROM codes").fetchone()
    assert synced is not None
    assert error is None
    assert not StoreReader(db).code_states()["US.AAPL"].failed


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "value",
    [NAN, None, -0.0, 0.0, INF, -INF, 1.5],
    ids=["nan", "absent", "minus-zero", "zero", "inf", "minus-inf", "plain"],
)
def test_an_unchanged_value_read_again_is_no_revision(
    db: sqlite3.Connection, value: object
) -> None:
    # A NaN is stored as NULL: compared with what is stored it is unchanged, however often it
    # comes (it was a revision on every re-read, 5 of 5).
    writer = StoreWriter(db)
    record = (1_700_000_030, "2026-04-30", 1000, value, 200, value, 10.0, 9.5)
    writer.store_page(AAPL, None, [record], "-1")
    revised = [writer.store_page(AAPL, None, [record], "-1").rows_revised for _ in range(5)]
    assert revised == [0] * 5
    assert len(versions(db)) == 1


@pytest.mark.parametrize(
    ("before", "after", "revision"),
    [
        (NAN, None, False),  # both read back as NULL: the store cannot tell them apart
        (0.0, -0.0, False),  # equal numbers; the sign first stored is kept
        (NAN, 1.5, True),
        (1.5, NAN, True),
        (None, 0.0, True),
        (INF, -INF, True),
        (INF, 1e308, True),
    ],
)
def test_a_value_is_revised_only_when_what_the_store_keeps_changes(
    db: sqlite3.Connection, before: object, after: object, revision: bool
) -> None:
    writer = StoreWriter(db)
    writer.store_page(
        AAPL, None, [(1_700_000_030, "2026-04-30", 1, before, 2, 2.0, 1.0, 1.0)], "-1"
    )
    again = writer.store_page(
        AAPL, None, [(1_700_000_030, "2026-04-30", 1, after, 2, 2.0, 1.0, 1.0)], "-1"
    )
    assert again.rows_revised == int(revision)
    assert len(versions(db)) == 1 + int(revision)


def test_values_read_back_as_stored(db: sqlite3.Connection) -> None:
    writer = StoreWriter(db)
    writer.store_page(AAPL, None, [(1_700_000_030, "2026-04-30", 1, NAN, 2, INF, -0.0, -INF)], "-1")
    kept = db.execute(
        "SELECT short_percent, days_to_cover, close_price, last_close_price FROM versions"
    ).fetchone()
    assert kept[0] is None
    assert kept[1:] == (INF, 0.0, -INF)
    assert str(kept[2]) == "-0.0"
