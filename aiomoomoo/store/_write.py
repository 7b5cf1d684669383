"""Everything that changes a store's file: the sync lock and the one-page transaction.

The store's ``segments`` table says which stretches of a code's history are stored complete: a
segment runs from ``high`` (its newest date) down to ``low``, and ``next_key`` is where a walk
continues below it (``"-1"`` when it reaches the start of the history). A walk always begins at
the first page with a new segment; each page extends it downwards, and when it reaches an older
segment the two merge and the walk jumps to the merged segment's ``next_key``: ``"-1"`` when the
history is whole, otherwise the saved key of an unfinished backfill. A page's rows and its
segment change commit in one transaction, so a killed sync leaves a store the next one continues.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, Final, Protocol
from zoneinfo import ZoneInfo

from .._errors import MoomooError, ProtocolError, StoreLockedError
from .._frames import HK_COLUMNS, US_COLUMNS, columns_for
from .._options import END_OF_DATA
from .._security import Market, Security


class StoreHandle(Protocol):
    """What the write path and the sync need of a `ShortInterestStore`, so they need not import
    the module that imports them."""

    def _open(self) -> sqlite3.Connection: ...

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _sync_lock(self) -> AbstractContextManager[None]: ...


__all__ = [
    "COMPLETE_SQL",
    "VALUE_COLUMNS",
    "FileLock",
    "StoreHandle",
    "commit_page",
    "record_outcome",
    "utc_now",
    "utc_text",
]

#: Every market's value columns, in the order the store's ``versions`` table holds them: the US
#: columns, then the HK ones the US lacks. The order is the file's schema; never reorder it.
VALUE_COLUMNS: Final = tuple(dict.fromkeys((*US_COLUMNS, *HK_COLUMNS)))
# Per market, where each value column is in a page's records (None: the market lacks it).
_VALUE_SOURCES: Final = {
    market: tuple(
        columns_for(market).index(column) if column in columns_for(market) else None
        for column in VALUE_COLUMNS
    )
    for market in Market
}
#: SQL for whether the code ``c.code`` has its whole history stored: one segment, reaching the
#: start of the history.
COMPLETE_SQL: Final = (
    f"(SELECT COUNT(*) = 1 AND MAX(next_key) = '{END_OF_DATA}' FROM segments s "
    "WHERE s.code = c.code)"
)


def utc_text(moment: dt.datetime) -> str:
    """``moment`` as the store writes times: fixed-width ISO UTC, so text order is time order."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    """The current time as the store writes it."""
    return utc_text(dt.datetime.now(dt.UTC))


class FileLock:
    """An exclusive lock on ``<store>.lock``, held by one sync; the OS drops it if we die."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        file = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            _lock_file(file)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise StoreLockedError(
                f"another sync is running on {self._path.with_suffix('')} ({holder}); "
                "wait for it to finish, or run the syncs one after the other"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()}")
        file.flush()
        self._file = file

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _lock_file(file: IO[str]) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        return
    import fcntl

    # flock, not fcntl locks: two opens in one process conflict too, so two stores on one
    # file in one program are refused the same way as two programs.
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def record_outcome(store: StoreHandle, security: Security, error: MoomooError | None) -> None:
    """Record the end of ``security``'s walk: its sync time, or the error that stopped it."""
    with store._transaction() as db:
        ensure_code(db, security)
        message = None if error is None else f"{type(error).__name__}: {error}"
        if error is None:
            db.execute(
                "UPDATE codes SET last_synced = ?, last_error = NULL WHERE code = ?",
                (utc_now(), security.code),
            )
        else:
            db.execute("UPDATE codes SET last_error = ? WHERE code = ?", (message, security.code))


def ensure_code(db: sqlite3.Connection, security: Security) -> None:
    """Add ``security`` to the ``codes`` table if it is not there yet."""
    db.execute(
        "INSERT OR IGNORE INTO codes (code, market) VALUES (?, ?)",
        (security.code, security.market.name),
    )


def _values(security: Security, record: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """A page's record as (trading date, value per `VALUE_COLUMNS`), None where left out."""
    values = [None if at is None else record[at] for at in _VALUE_SOURCES[security.market]]
    day = values[1]
    if not day and values[0] is not None:
        zone = ZoneInfo(security.market.timezone)
        day = dt.datetime.fromtimestamp(values[0], zone).date().isoformat()
    if not day:
        raise ProtocolError(f"OpenD sent a {security.code} row without a date; it cannot be stored")
    return str(day), tuple(values)


_SELECT_CURRENT: Final = (
    f"SELECT rowid, {', '.join(VALUE_COLUMNS)} FROM versions "
    "WHERE code = ? AND date = ? AND superseded IS NULL"
)
_INSERT: Final = (
    f"INSERT INTO versions (code, date, {', '.join(VALUE_COLUMNS)}, first_seen, last_seen) "
    f"VALUES (?, ?, {', '.join('?' * len(VALUE_COLUMNS))}, ?, ?)"
)


def commit_page(
    store: StoreHandle,
    security: Security,
    segment: int | None,
    records: Any,
    next_key: str,
    *,
    full: bool,
) -> tuple[int, str, int, int]:
    """Store one page and move the walk's segment; return (segment, key to walk on, new rows,
    revised rows). The key is ``"-1"`` when the walk is over."""
    rows = [_values(security, record) for record in records]
    now = utc_now()
    new = revised = 0
    code = security.code
    with store._transaction() as db:
        ensure_code(db, security)
        for day, values in rows:
            current = db.execute(_SELECT_CURRENT, (code, day)).fetchone()
            if current is not None and tuple(current[1:]) == values:
                db.execute("UPDATE versions SET last_seen = ? WHERE rowid = ?", (now, current[0]))
                continue
            if current is None:
                new += 1
            else:
                revised += 1
                db.execute("UPDATE versions SET superseded = ? WHERE rowid = ?", (now, current[0]))
            db.execute(_INSERT, (code, day, *values, now, now))
        dates = [day for day, _ in rows]
        page_low = min(dates) if dates else None
        if segment is None:
            high = max(dates) if dates else None
            cursor = db.execute(
                "INSERT INTO segments (code, high, low, next_key) VALUES (?, ?, ?, ?)",
                (code, high, page_low, next_key),
            )
            assert cursor.lastrowid is not None
            segment, low, key = cursor.lastrowid, page_low, next_key
        else:
            low, key = db.execute(
                "SELECT low, next_key FROM segments WHERE id = ?", (segment,)
            ).fetchone()
            if next_key == END_OF_DATA:
                key = END_OF_DATA
            if page_low is not None and (low is None or page_low < low):
                low = page_low
                if key != END_OF_DATA:
                    key = next_key
        low, key = _merge_below(db, code, segment, low, key)
        db.execute("UPDATE segments SET low = ?, next_key = ? WHERE id = ?", (low, key, segment))
    walk_on = next_key if full else key
    return segment, walk_on, new, revised


def _merge_below(
    db: sqlite3.Connection, code: str, segment: int, low: str | None, key: str
) -> tuple[str | None, str]:
    """Merge into ``segment`` every older segment it now reaches; return its new (low, key)."""
    # A segment that ends the history reaches down to before any date ("" sorts first).
    bottom = "" if key == END_OF_DATA else low
    if bottom is None:
        return low, key
    reached = db.execute(
        "SELECT id, low, next_key FROM segments "
        "WHERE code = ? AND id != ? AND COALESCE(high, '') >= ?",
        (code, segment, bottom),
    ).fetchall()
    if not reached:
        return low, key
    candidates = [(low, key), *((other_low, other_key) for _, other_low, other_key in reached)]
    # The merged segment continues below whichever part reaches lowest.
    key = min(candidates, key=lambda c: "" if c[1] == END_OF_DATA else (c[0] or ""))[1]
    lows = [c[0] for c in candidates if c[0] is not None]
    db.executemany("DELETE FROM segments WHERE id = ?", [(other,) for other, _, _ in reached])
    return (min(lows) if lows else None), key
