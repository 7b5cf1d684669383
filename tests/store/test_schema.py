"""The store's file format: its version is read on opening, a newer one is refused before
anything is written, every older one is migrated in one transaction, and the counts the writer
keeps per code match the rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import ShortInterestStore, StoreVersionError
from aiomoomoo._security import parse_code
from aiomoomoo.store._schema import SCHEMA_VERSION
from aiomoomoo.store._write import StoreWriter

# -- version 1, as aiomoomoo 0.x wrote it (the statements of its _schema module) --------------

_V1_VALUES = (
    "timestamp, timestamp_str, shares_short, short_percent, avg_daily_share_volume, "
    "days_to_cover, close_price, last_close_price, aggregated_short, aggregated_short_ratio"
)
V1_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS codes (
        code TEXT PRIMARY KEY,
        market TEXT NOT NULL,
        last_synced TEXT,
        last_error TEXT
    )""",
    f"""CREATE TABLE IF NOT EXISTS versions (
        code TEXT NOT NULL REFERENCES codes(code),
        date TEXT NOT NULL,
        {_V1_VALUES},
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        superseded TEXT
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS current_version ON versions(code, date)
        WHERE superseded IS NULL""",
    "CREATE INDEX IF NOT EXISTS version_history ON versions(code, date, first_seen)",
    """CREATE TABLE IF NOT EXISTS segments (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL REFERENCES codes(code),
        high TEXT,
        low TEXT,
        next_key TEXT NOT NULL
    )""",
    "INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')",
)
T1 = "2026-05-01T12:00:00.250000Z"
T2 = "2026-05-16T09:30:00.000001Z"
T3 = "2026-05-17T00:00:00.000000Z"


def _us(day: str, shares: int, first: str, last: str, superseded: str | None) -> tuple[object, ...]:
    stamp = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp())
    values = (stamp, day, shares, 1.5, 200, 2.0, 10.0, 9.5, None, None)
    return ("US.AAPL", day, *values, first, last, superseded)


def build_v1(path: Path, *, bad_date: str | None = None) -> None:
    """A version 1 file: a US code with a revision, an HK code, a code whose sync failed."""
    rows = [
        _us("2026-04-30", 300, T1, T1, T2),  # revised at T2
        _us("2026-04-30", 310, T2, T3, None),
        _us("2026-04-15", 200, T1, T3, None),
        _us("2026-03-31", 100, T1, T3, None),
        (
            "HK.00700",
            "2026-04-24",
            1_777_000_000,
            "2026-04-24",
            None,
            None,
            None,
            None,
            400.0,
            398.0,
            5000,
            0.25,
            T1,
            T1,
            None,
        ),
    ]
    if bad_date is not None:
        rows.append(("US.AAPL", bad_date, *rows[1][2:]))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for statement in V1_DDL:
            db.execute(statement)
        db.executemany(
            "INSERT INTO codes VALUES (?, ?, ?, ?)",
            [
                ("US.AAPL", "US", T3, None),
                ("HK.00700", "HK", T1, None),
                ("US.GONE", "US", None, "UnknownSecurityError: unknown stock"),
            ],
        )
        db.executemany(f"INSERT INTO versions VALUES ({', '.join('?' * 15)})", rows)
        db.executemany(
            "INSERT INTO segments (code, high, low, next_key) VALUES (?, ?, ?, ?)",
            [("US.AAPL", "2026-04-30", "2026-03-31", "-1"), ("HK.00700", "2026-04-24", None, "k")],
        )


#: A builder of a file of every version before the current one, by version.
PAST_VERSIONS: dict[int, Callable[[Path], None]] = {1: build_v1}


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_past_version_has_a_file_to_migrate() -> None:
    assert set(PAST_VERSIONS) == set(range(1, int(SCHEMA_VERSION)))


@pytest.mark.parametrize("version", sorted(PAST_VERSIONS))
def test_a_past_version_is_migrated_with_every_row_and_time(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    PAST_VERSIONS[version](path)
    with ShortInterestStore(path) as store:
        assert store.codes() == ["HK.00700", "US.AAPL", "US.GONE"]
        now = store.history("US.AAPL")
        assert now["shares_short"].tolist() == [310, 200, 100]
        assert now["timestamp_str"].tolist() == ["2026-04-30", "2026-04-15", "2026-03-31"]
        assert now.loc[0, "shares_short_previous"] == 200
        assert now.loc[0, "first_seen"] == pd.Timestamp(T2)
        assert now.loc[0, "last_seen"] == pd.Timestamp(T3)
        # The dtype pandas reads format 1's ISO text as, kept.
        assert str(now["first_seen"].dtype) == "datetime64[us, UTC]"
        # The revision keeps its instant to the microsecond.
        before = _moment(T2) - dt.timedelta(microseconds=1)
        assert store.history("US.AAPL", as_of=before)["shares_short"].tolist() == [300, 200, 100]
        assert store.history("US.AAPL", as_of=T2)["shares_short"].tolist() == [310, 200, 100]
        summary = store.summary().set_index("code")
        aapl = summary.loc["US.AAPL"]
        assert [aapl["rows"], aapl["revisions"], aapl["oldest"], aapl["newest"]] == [
            3,
            1,
            "2026-03-31",
            "2026-04-30",
        ]
        assert bool(summary.loc["US.AAPL", "complete"])
        assert not bool(summary.loc["HK.00700", "complete"])
        assert summary.loc["US.GONE", "last_error"] == "UnknownSecurityError: unknown stock"
        assert summary.loc["US.GONE", "rows"] == 0
        tencent = store.latest("HK")
        assert tencent["aggregated_short"].tolist() == [5000]
        assert store.plan(["US.AAPL", "HK.00700", "US.GONE"], today=dt.date(2026, 5, 1)).due == (
            "HK.00700",
            "US.GONE",
        )
        # The migrated file takes new pages like a new one.
        writer = StoreWriter(store._db)
        record = (1_778_000_000, "2026-05-15", 400, 1.5, 200, 2.0, 10.0, 9.5)
        writer.store_page(parse_code("US.AAPL"), None, [record], "k")
        assert store.history("US.AAPL")["shares_short"].tolist()[:2] == [400, 310]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM meta").fetchall() == [(SCHEMA_VERSION,)]
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert not {"codes_v2", "versions_v2", "current_version", "version_history"} & tables
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "2026-13-45",
        "2026-02-30",
        "26-04-30",
        "2026/04/30",
        "9999-12-31",
        "1899-12-31",
        # Beside the plain 2026-04-30 of the same code, both current in version 1.
        "2026-04-30 00:00:00",
    ],
)
def test_a_v1_row_dated_by_no_day_is_kept_aside_and_the_store_opens(
    tmp_path: Path, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Such a row was stored before rows were checked. It cannot be keyed by its date, nor
    # planned from (a sync raised before sending anything): it is kept aside, not lost.
    path = tmp_path / "old.db"
    build_v1(path, bad_date=bad)
    with ShortInterestStore(path) as store:
        assert len(store.history("US.AAPL")) == 3
        plan = store.plan(["US.AAPL", "HK.00700"], today=dt.date(2026, 5, 1))
        assert set(plan.due) | set(plan.skipped) == {"US.AAPL", "HK.00700"}
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM meta").fetchall() == [("2",)]
        aside = db.execute("SELECT code, date FROM unreadable_v1_versions").fetchall()
        assert aside == [("US.AAPL", bad)]
    assert "kept aside in its table unreadable_v1_versions" in caplog.text


@pytest.mark.parametrize("found", ["3", "10", "2.1"])
def test_a_newer_version_is_refused_before_anything_is_written(tmp_path: Path, found: str) -> None:
    path = tmp_path / "new.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (found,))
        db.execute("CREATE TABLE versions (id INTEGER PRIMARY KEY, something_new BLOB)")
    before = _digest(path)
    with pytest.raises(StoreVersionError) as caught:
        ShortInterestStore(path)
    message = str(caught.value)
    assert repr(found) in message or f"version {found}" in message
    assert f"version {SCHEMA_VERSION}" in message
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def test_the_counts_kept_per_code_match_the_rows(tmp_path: Path) -> None:
    aapl, tencent = parse_code("US.AAPL"), parse_code("HK.00700")

    def us(day: int, shares: int) -> tuple[object, ...]:
        return (1_700_000_000 + day, f"2026-04-{day:02d}", shares, 1.5, 200, 2.0, 10.0, 9.5)

    with ShortInterestStore(tmp_path / "s.db") as store:
        writer = StoreWriter(store._db)
        writer.store_page(aapl, None, [us(30, 3), us(15, 2), us(1, 1)], "-1")
        writer.store_page(aapl, None, [us(30, 4), us(15, 2)], "-1")  # one revision
        # The same date twice in one page: the second value wins, counted as a revision.
        writer.store_page(aapl, None, [us(30, 5), us(30, 6)], "-1")
        writer.store_page(tencent, None, [(1_777_000_000, "2026-04-24", 7, 0.1, 1.0, 1.0)], "-1")
        writer.store_page(tencent, None, [], "-1")
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            kept = db.execute(
                "SELECT code, current_rows, revisions, oldest, newest FROM codes ORDER BY code"
            ).fetchall()
            counted = db.execute(
                "SELECT c.code, COUNT(*) FILTER (WHERE superseded IS NULL),"
                " COUNT(*) FILTER (WHERE superseded IS NOT NULL), MIN(date), MAX(date)"
                " FROM codes c JOIN versions v ON v.code_id = c.id GROUP BY c.code ORDER BY c.code"
            ).fetchall()
        assert (
            kept
            == counted
            == [
                ("HK.00700", 1, 0, 20260424, 20260424),
                ("US.AAPL", 3, 2, 20260401, 20260430),
            ]
        )
        assert store.history("US.AAPL")["shares_short"].tolist() == [6, 2, 1]


def test_history_batches_hold_whole_codes_and_match_history(tmp_path: Path) -> None:
    writer_rows: dict[str, list[tuple[Any, ...]]] = {
        "US.AAPL": [(1_700_000_000 + d, f"2026-04-{d:02d}", d * 10, 1.5, 200, 2.0, 10.0, 9.5)
                    for d in (30, 15, 1)],
        "US.TSLA": [(1_700_000_000 + d, f"2026-04-{d:02d}", d * 7, 1.5, 200, 2.0, 10.0, 9.5)
                    for d in (30, 15)],
        "HK.00700": [(1_777_000_000 + d, f"2026-04-{d:02d}", d, 0.1, 1.0, 1.0)
                     for d in (24, 17, 10, 3)],
    }  # fmt: skip
    with ShortInterestStore(tmp_path / "s.db") as store:
        writer = StoreWriter(store._db)
        for code, records in writer_rows.items():
            writer.store_page(parse_code(code), None, records, "-1")
        batches = list(store.history_batches(rows=2))
        # No code is split, however small the batches.
        codes = [tuple(dict.fromkeys(b["code"])) for b in batches]
        assert [c for b in codes for c in b] == ["HK.00700", "US.AAPL", "US.TSLA"]
        assert len({tuple(b.columns) for b in batches}) == 1
        assert len({tuple(map(str, b.dtypes)) for b in batches}) == 1
        whole = pd.concat(batches, ignore_index=True)
        for code in writer_rows:
            mine = whole[whole["code"] == code].drop(columns="code").reset_index(drop=True)
            history = store.history(code)
            pd.testing.assert_frame_equal(mine[history.columns], history)
        since = pd.concat(store.history_batches(["US.AAPL"], since="2026-04-15"))
        assert since["shares_short"].tolist() == [300, 150]
        # The change from the row before `since` is kept.
        assert since["shares_short_previous"].tolist() == [150, 10]
        assert "aggregated_short" not in since.columns
        with pytest.raises(KeyError, match=r"US\.NVDA"):
            store.history_batches(["US.NVDA"])
        with pytest.raises(ValueError, match="rows must be"):
            store.history_batches(rows=0)
