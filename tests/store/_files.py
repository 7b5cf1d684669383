"""Store files for the tests of what goes wrong with them: one with rows, another program's write
transaction held on it, and damage where opening does not look."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiomoomoo import ShortInterestStore
from aiomoomoo._security import parse_code

AAPL = parse_code("US.AAPL")


def us(month: int, day: int) -> tuple[Any, ...]:
    """A US.AAPL record of 2026-``month``-``day``."""
    return (
        1_700_000_000 + day,
        f"2026-{month:02d}-{day:02d}",
        1000 + day,
        1.5,
        200,
        2.0,
        10.0,
        9.5,
    )


def write_rows(store: ShortInterestStore, months: int = 1) -> None:
    """Store US.AAPL's rows of ``months`` months into ``store``, one page (transaction) a month."""
    segment = None
    for month in range(1, months + 1):
        page = [us(month, day) for day in range(28, 0, -1)]
        segment = store._writer.store_page(AAPL, segment, page, "more").segment


def store_with_rows(path: Path, months: int = 1) -> Path:
    with ShortInterestStore(path) as store:
        write_rows(store, months)
    return path


@contextlib.contextmanager
def write_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's write transaction on ``path``, held while inside."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO meta VALUES ('other', 'writing')")
        try:
            yield other
        finally:
            other.execute("ROLLBACK")


def damage_versions(path: Path) -> None:
    """Overwrite the ``versions`` table's first page with junk: the file still opens as a store
    (its header, ``meta`` and schema are intact); reading the rows finds the damage."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'versions'"
        ).fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xa5" * size)


def room_for(pages: int, directory: Path) -> str:
    """A PRAGMA that lets a store grow only ``pages`` pages past an empty one of today's schema:
    past them SQLite answers as for a full disk (SQLITE_FULL)."""
    empty = directory / "empty-for-size.db"
    with ShortInterestStore(empty):
        pass
    with contextlib.closing(sqlite3.connect(empty)) as db:
        (count,) = db.execute("PRAGMA page_count").fetchone()
    empty.unlink()
    return f"PRAGMA max_page_count = {count + pages}"
