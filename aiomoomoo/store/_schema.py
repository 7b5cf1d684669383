"""The store's file format and every SQL statement the store runs, in one place.

Tables: ``meta`` (the schema version), ``codes`` (one row per code synced, with its last sync
and last error), ``versions`` (every version of every row; the current one has ``superseded
IS NULL``) and ``segments`` (which stretches of each code's history are stored complete, and
where a walk continues below each), ``frontiers`` (per market, the newest date any code holds
and the day a sync first saw it) and ``asked`` (per code, the market's frontier when the code
was last asked). Other modules hold no SQL text of their own: they run the
statements named here. Opening a file goes through `prepare`, the one place that creates the
tables and, as the format changes, will check ``PRAGMA user_version`` and migrate.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Final

from .._frames import HK_COLUMNS, US_COLUMNS, columns_for
from .._options import END_OF_DATA
from .._security import Market

__all__ = [
    "COMPLETE_SQL",
    "SCHEMA_VERSION",
    "VALUE_COLUMNS",
    "prepare",
    "rows_query",
    "schema_version",
    "transaction",
]

#: The version of the file format this module writes.
SCHEMA_VERSION: Final = "1"

#: Every market's value columns, in the order the ``versions`` table holds them: the US
#: columns, then the HK ones the US lacks. The order is the file's schema; never reorder it.
VALUE_COLUMNS: Final = tuple(dict.fromkeys((*US_COLUMNS, *HK_COLUMNS)))

#: SQL for whether the code ``c.code`` has its whole history stored: one segment, reaching the
#: start of the history.
COMPLETE_SQL: Final = (
    f"(SELECT COUNT(*) = 1 AND MAX(next_key) = '{END_OF_DATA}' FROM segments s "
    "WHERE s.code = c.code)"
)

# -- the format ---------------------------------------------------------------------------------

#: How long, in milliseconds, one SQLite call waits for another program's lock before it
#: returns to Python. Longer waits are the store's own loop of such calls (see
#: ``aiomoomoo.store._file``), which answers Ctrl-C and gives up after the store's ``wait``.
BUSY_SLICE_MS: Final = 100

# Set on every connection that writes: in WAL mode synchronous=NORMAL survives any crash of the
# process (kill -9 included), only a power loss can take back the last commits. Neither needs
# a write lock on a file already in WAL mode.
PRAGMAS: Final = (
    f"PRAGMA busy_timeout = {BUSY_SLICE_MS}",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
)
# Set on a read-only connection, which can change nothing of the file.
READ_PRAGMAS: Final = (f"PRAGMA busy_timeout = {BUSY_SLICE_MS}",)
DDL: Final = (
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
        {", ".join(VALUE_COLUMNS)},
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
    # Added after the first release: a file without them gains them when opened.
    """CREATE TABLE IF NOT EXISTS frontiers (
        market TEXT PRIMARY KEY,
        newest TEXT NOT NULL,
        moved TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS asked (
        code TEXT PRIMARY KEY REFERENCES codes(code),
        frontier TEXT NOT NULL
    )""",
)
INSERT_SCHEMA_VERSION: Final = "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)"
# Written with the tables, in their transaction: a file that has it has them all.
HAS_META: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
SELECT_SCHEMA_VERSION: Final = "SELECT value FROM meta WHERE key = 'schema_version'"

BEGIN: Final = "BEGIN IMMEDIATE"
COMMIT: Final = "COMMIT"
ROLLBACK: Final = "ROLLBACK"

# -- writes (run by aiomoomoo.store._write only) ------------------------------------------------

INSERT_CODE: Final = "INSERT OR IGNORE INTO codes (code, market) VALUES (?, ?)"
MARK_SYNCED: Final = "UPDATE codes SET last_synced = ?, last_error = NULL WHERE code = ?"
MARK_FAILED: Final = "UPDATE codes SET last_error = ? WHERE code = ?"
# The current version of (code, date) and whether it holds the values given, compared as the
# file keeps them: IS is NULL-safe, and a NaN parameter binds as NULL, as it is stored.
# Parameters: the values in `VALUE_COLUMNS` order, then code and date.
SELECT_CURRENT: Final = (
    f"SELECT rowid, {' AND '.join(f'{column} IS ?' for column in VALUE_COLUMNS)} FROM versions "
    "WHERE code = ? AND date = ? AND superseded IS NULL"
)
INSERT_VERSION: Final = (
    f"INSERT INTO versions (code, date, {', '.join(VALUE_COLUMNS)}, first_seen, last_seen) "
    f"VALUES (?, ?, {', '.join('?' * len(VALUE_COLUMNS))}, ?, ?)"
)
MARK_SEEN: Final = "UPDATE versions SET last_seen = ? WHERE rowid = ?"
SUPERSEDE: Final = "UPDATE versions SET superseded = ? WHERE rowid = ?"
INSERT_SEGMENT: Final = "INSERT INTO segments (code, high, low, next_key) VALUES (?, ?, ?, ?)"
SELECT_SEGMENT: Final = "SELECT low, next_key FROM segments WHERE id = ?"
UPDATE_SEGMENT: Final = "UPDATE segments SET low = ?, next_key = ? WHERE id = ?"
# The code's other segments whose newest date reaches down to ? or below (a segment without
# rows counts as reaching everything).
SEGMENTS_REACHED: Final = (
    "SELECT id, low, next_key FROM segments WHERE code = ? AND id != ? AND COALESCE(high, '') >= ?"
)
DELETE_SEGMENT: Final = "DELETE FROM segments WHERE id = ?"
# A market's frontier moved: (market, newest date, the market's date it was first seen).
SET_FRONTIER: Final = "INSERT OR REPLACE INTO frontiers (market, newest, moved) VALUES (?, ?, ?)"
# A code was asked with its market at this frontier: (code, frontier date).
SET_ASKED: Final = "INSERT OR REPLACE INTO asked (code, frontier) VALUES (?, ?)"

# -- reads (run by aiomoomoo.store._read) -------------------------------------------------------

SELECT_CODES: Final = "SELECT code FROM codes ORDER BY code"
CODE_EXISTS: Final = "SELECT 1 FROM codes WHERE code = ?"
SUMMARY: Final = f"""
    SELECT c.code, c.market,
           COUNT(v.date) FILTER (WHERE v.superseded IS NULL),
           MIN(v.date), MAX(v.date),
           COUNT(v.date) FILTER (WHERE v.superseded IS NOT NULL),
           {COMPLETE_SQL},
           c.last_synced, c.last_error
    FROM codes c LEFT JOIN versions v ON v.code = c.code
    GROUP BY c.code ORDER BY c.code
"""
# What planning needs of every stored code: its market, current rows, newest date, whether its
# history is complete, and whether its last sync failed.
CODE_STATES: Final = f"""
    SELECT c.code, c.market,
           COUNT(v.date) FILTER (WHERE v.superseded IS NULL),
           MAX(v.date) FILTER (WHERE v.superseded IS NULL),
           {COMPLETE_SQL},
           c.last_error IS NOT NULL
    FROM codes c LEFT JOIN versions v ON v.code = c.code
    GROUP BY c.code
"""
SELECT_FRONTIERS: Final = "SELECT market, newest, moved FROM frontiers"
SELECT_ASKED: Final = "SELECT code, frontier FROM asked"
# Per code, how many of its market's ? newest dates (over every code's current rows) it has a
# current row for; codes with none are left out.
RECENT_ROWS: Final = """
    WITH held AS (
        SELECT v.code, c.market, v.date FROM versions v JOIN codes c ON c.code = v.code
        WHERE v.superseded IS NULL
    ),
    recent AS (
        SELECT market, date FROM (
            SELECT market, date, ROW_NUMBER() OVER (PARTITION BY market ORDER BY date DESC) AS n
            FROM (SELECT DISTINCT market, date FROM held)
        ) WHERE n <= ?
    )
    SELECT held.code, COUNT(*) FROM held JOIN recent USING (market, date) GROUP BY held.code
"""
_CURRENT: Final = "v.superseded IS NULL"
_KNOWN_AT: Final = "v.first_seen <= ? AND (v.superseded IS NULL OR v.superseded > ?)"


def rows_query(market: Market, *, as_of: bool, by: str, newest: bool) -> str:
    """The query for ``market``'s rows: ``code``, the market's columns, ``first_seen`` and
    ``last_seen``, sorted by code then date, newest first.

    Parameters: the moment twice when ``as_of`` (the versions known then, otherwise the current
    ones), then the value of ``by`` (``"code"`` or ``"market"``, a column of ``codes``). With
    ``newest`` each code's two newest rows only (the newest and the one its change is from).
    """
    if by not in ("code", "market"):
        raise ValueError(f"by must be 'code' or 'market', got {by!r}")
    names = ["code", *columns_for(market), "first_seen", "last_seen"]
    known = _KNOWN_AT if as_of else _CURRENT
    selected = ", ".join("v." + name for name in names)
    rows = f"FROM versions v JOIN codes c ON c.code = v.code WHERE {known} AND c.{by} = ?"
    if not newest:
        return f"SELECT {selected} {rows} ORDER BY v.code, v.date DESC"
    rows = f"SELECT {selected}, v.date AS date {rows}"
    return f"""
        SELECT {", ".join(names)} FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY code ORDER BY date DESC) AS n
            FROM ({rows})
        ) WHERE n <= 2 ORDER BY code, date DESC
    """


# -- opening --------------------------------------------------------------------------------


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``db`` (autocommit mode), taken at once (``BEGIN IMMEDIATE``),
    committed on success and rolled back on any exception."""
    db.execute(BEGIN)
    try:
        yield db
    except BaseException:
        # Some errors (a full disk, an I/O error) have rolled the transaction back already;
        # a ROLLBACK then would fail and hide them.
        if db.in_transaction:
            db.execute(ROLLBACK)
        raise
    db.execute(COMMIT)


def schema_version(db: sqlite3.Connection) -> str | None:
    """The format version of the store open on ``db``, None for a file without the store's
    tables (an empty or new file, or another program's database). Reads only."""
    if db.execute(HAS_META).fetchone() is None:
        return None
    row = db.execute(SELECT_SCHEMA_VERSION).fetchone()
    return None if row is None else str(row[0])


def prepare(db: sqlite3.Connection) -> None:
    """Set ``db``'s connection options and create the tables a new file lacks.

    A file that has them is only read: opening a store takes no write lock, so it does not
    wait for another program's write transaction."""
    for pragma in PRAGMAS:
        db.execute(pragma)
    if schema_version(db) is not None:
        return
    with transaction(db):
        for statement in DDL:
            db.execute(statement)
        db.execute(INSERT_SCHEMA_VERSION, (SCHEMA_VERSION,))
