"""The store's file format and every SQL statement the store runs, in one place.

Tables: ``meta`` (the schema version), ``codes`` (one row per code synced: an integer ``id``,
its last sync and last error, and counts of its rows kept by the writer so that summaries and
plans read one row per code), ``versions`` (every version of every row, clustered by code and
date, newest first; the current one has ``superseded IS NULL``), ``segments`` (which
stretches of each code's history are stored complete, and where a walk continues below each),
``frontiers`` (per market, the newest date any code holds and the day a sync first saw it) and
``asked`` (per code, the market's frontier when the code was last asked). Other modules hold no
SQL text of their own: they run the statements named here. Opening a file goes through
`aiomoomoo.store._format.prepare`, which creates these tables, reads the file's
``schema_version``, refuses a newer one and migrates an older one.
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
    "codes_table",
    "export_query",
    "iso_date",
    "rows_query",
    "transaction",
    "versions_table",
]

#: The version of the file format this module writes.
SCHEMA_VERSION: Final = "2"

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
# Set on every connection before anything else.
BUSY_TIMEOUT: Final = f"PRAGMA busy_timeout = {BUSY_SLICE_MS}"
# Set on a connection that writes, once the file's version is known to be readable: in WAL mode
# synchronous=NORMAL survives any crash of the process (kill -9 included), only a power loss
# can take back the last commits. Neither needs a write lock on a file already in WAL mode.
PRAGMAS: Final = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
)
# Set on a read-only connection, which can change nothing of the file.
READ_PRAGMAS: Final = (BUSY_TIMEOUT,)
#: Times (``first_seen``, ``last_seen``, ``superseded``) are integer microseconds since the Unix
#: epoch, UTC; dates are integers ``YYYYMMDD``. ``versions`` is clustered by (code, date newest
#: first, first_seen): a code's history is one contiguous run of the table, read in order.


def codes_table(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        market TEXT NOT NULL,
        last_synced TEXT,
        last_error TEXT,
        current_rows INTEGER NOT NULL DEFAULT 0,
        revisions INTEGER NOT NULL DEFAULT 0,
        oldest INTEGER,
        newest INTEGER
    )"""


def versions_table(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
        code_id INTEGER NOT NULL REFERENCES codes(id),
        date INTEGER NOT NULL,
        {", ".join(VALUE_COLUMNS)},
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        superseded INTEGER,
        PRIMARY KEY (code_id, date DESC, first_seen)
    ) WITHOUT ROWID"""


SEGMENTS_INDEX: Final = "CREATE INDEX IF NOT EXISTS segments_of_code ON segments(code)"
DDL: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    codes_table("codes"),
    versions_table("versions"),
    """CREATE TABLE IF NOT EXISTS segments (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL REFERENCES codes(code),
        high TEXT,
        low TEXT,
        next_key TEXT NOT NULL
    )""",
    SEGMENTS_INDEX,
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
SET_SCHEMA_VERSION: Final = "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)"
HAS_META: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
HAS_TABLES: Final = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
SELECT_SCHEMA_VERSION: Final = "SELECT value FROM meta WHERE key = 'schema_version'"

BEGIN: Final = "BEGIN IMMEDIATE"
COMMIT: Final = "COMMIT"
ROLLBACK: Final = "ROLLBACK"
VACUUM: Final = "VACUUM"

# -- writes (run by aiomoomoo.store._write only) ------------------------------------------------

INSERT_CODE: Final = "INSERT OR IGNORE INTO codes (code, market) VALUES (?, ?)"
SELECT_CODE_ID: Final = "SELECT id FROM codes WHERE code = ?"
MARK_SYNCED: Final = "UPDATE codes SET last_synced = ?, last_error = NULL WHERE code = ?"
MARK_FAILED: Final = "UPDATE codes SET last_error = ? WHERE code = ?"
# What a page changed of its code's counts: current rows and revisions added, its dates' span.
COUNT_PAGE: Final = """
    UPDATE codes SET current_rows = current_rows + ?, revisions = revisions + ?,
        oldest = MIN(COALESCE(oldest, ?), ?), newest = MAX(COALESCE(newest, ?), ?)
    WHERE id = ?
"""
# The current version of (code id, date): its first_seen, and whether it holds the values given,
# compared as the file keeps them: IS is NULL-safe, and a NaN parameter binds as NULL, as it is
# stored. Parameters: the values in `VALUE_COLUMNS` order, then code id and date.
SELECT_CURRENT: Final = (
    f"SELECT first_seen, {' AND '.join(f'{column} IS ?' for column in VALUE_COLUMNS)} "
    "FROM versions WHERE code_id = ? AND date = ? AND superseded IS NULL"
)
INSERT_VERSION: Final = (
    f"INSERT INTO versions (code_id, date, {', '.join(VALUE_COLUMNS)}, first_seen, last_seen) "
    f"VALUES (?, ?, {', '.join('?' * len(VALUE_COLUMNS))}, ?, ?)"
)
_VERSION_KEY: Final = "WHERE code_id = ? AND date = ? AND first_seen = ?"
MARK_SEEN: Final = f"UPDATE versions SET last_seen = ? {_VERSION_KEY}"
SUPERSEDE: Final = f"UPDATE versions SET superseded = ? {_VERSION_KEY}"
# A version first seen at this very instant (the same date twice in one page) is replaced.
REPLACE_VALUES: Final = (
    f"UPDATE versions SET {', '.join(name + ' = ?' for name in VALUE_COLUMNS)} {_VERSION_KEY}"
)
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
SELECT_MARKETS: Final = "SELECT DISTINCT market FROM codes"
# Dates as ISO text, from the integer YYYYMMDD the file keeps.
_ISO_DATE: Final = "printf('%04d-%02d-%02d', {0} / 10000, {0} / 100 % 100, {0} % 100)"


def iso_date(column: str) -> str:
    """SQL for ``column`` (an integer ``YYYYMMDD`` date, or NULL) as ``YYYY-MM-DD`` text."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {_ISO_DATE.format(column)} END"


SUMMARY: Final = f"""
    SELECT c.code, c.market, c.current_rows, {iso_date("c.oldest")}, {iso_date("c.newest")},
           c.revisions, {COMPLETE_SQL}, c.last_synced, c.last_error
    FROM codes c ORDER BY c.code
"""
# What planning needs of every stored code: its market, current rows, newest date, whether its
# history is complete, and whether its last sync failed.
CODE_STATES: Final = f"""
    SELECT c.code, c.market, c.current_rows, c.newest, {COMPLETE_SQL}, c.last_error IS NOT NULL
    FROM codes c
"""
SELECT_FRONTIERS: Final = "SELECT market, newest, moved FROM frontiers"
SELECT_ASKED: Final = "SELECT code, frontier FROM asked"
# Per code, how many of its market's ? newest dates (over every code's current rows) it has a
# current row for; codes with none are left out.
RECENT_ROWS: Final = """
    WITH held AS (
        SELECT c.code, c.market, v.date FROM versions v JOIN codes c ON c.id = v.code_id
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
_CURRENT: Final = "{0}.superseded IS NULL"
_KNOWN_AT: Final = "{0}.first_seen <= ? AND ({0}.superseded IS NULL OR {0}.superseded > ?)"


def rows_query(market: Market, *, as_of: bool, by: str, newest: bool) -> str:
    """The query for ``market``'s rows: ``code``, the market's columns, ``first_seen`` and
    ``last_seen``, sorted by code then date, newest first.

    Parameters: the value of ``by`` (``"code"`` or ``"market"``, a column of ``codes``), then
    the moment twice when ``as_of`` (the versions known then, otherwise the current ones), twice
    more with ``newest``. With ``newest`` each code's two newest rows only (the newest and the
    one its change is from).
    """
    if by not in ("code", "market"):
        raise ValueError(f"by must be 'code' or 'market', got {by!r}")
    names = ["c.code", *("v." + name for name in columns_for(market)), "v.first_seen"]
    known = (_KNOWN_AT if as_of else _CURRENT).format("v")
    selected = ", ".join([*names, "v.last_seen"])
    query = f"SELECT {selected} FROM codes c JOIN versions v ON v.code_id = c.id"
    where = f"c.{by} = ? AND {known}"
    if newest:
        # The second newest date known: the rows from it up are each code's two newest.
        second = (
            f"SELECT w.date FROM versions w WHERE w.code_id = c.id AND "
            f"{(_KNOWN_AT if as_of else _CURRENT).format('w')} "
            "ORDER BY w.date DESC LIMIT 1 OFFSET 1"
        )
        where += f" AND v.date >= COALESCE(({second}), 0)"
    return f"{query} WHERE {where} ORDER BY c.code, v.date DESC"


def export_query(*, codes: bool, as_of: bool) -> str:
    """Every market's rows for an export: ``code``, ``market``, `VALUE_COLUMNS`, ``first_seen``
    and ``last_seen``, sorted by code then date, newest first.

    Parameters in order: the moment twice when ``as_of``, the codes as a JSON array when
    ``codes`` (else every code).
    """
    known = (_KNOWN_AT if as_of else _CURRENT).format("v")
    where = [known]
    if codes:
        where.append("c.code IN (SELECT value FROM json_each(?))")
    values = ", ".join("v." + name for name in VALUE_COLUMNS)
    return (
        f"SELECT c.code, c.market, {values}, v.first_seen, v.last_seen "
        f"FROM codes c JOIN versions v ON v.code_id = c.id WHERE {' AND '.join(where)} "
        "ORDER BY c.code, v.date DESC"
    )


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
