"""Format versions: reading the version a store file says it has, refusing a newer one, and
creating the tables of a new file or migrating an older one, in one transaction.

Each migration in `MIGRATE_FROM` takes a file of the version before to its own; the tables and
statements of the current version are `aiomoomoo.store._schema`'s.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Final

from .._errors import StoreVersionError
from . import _schema
from ._schema import (
    BUSY_TIMEOUT,
    DDL,
    HAS_META,
    SCHEMA_VERSION,
    SEGMENTS_INDEX,
    SELECT_SCHEMA_VERSION,
    SET_SCHEMA_VERSION,
    VACUUM,
    VALUE_COLUMNS,
    codes_table,
    transaction,
    versions_table,
)

__all__ = ["MIGRATE_FROM", "V1_UNREADABLE_TABLE", "prepare", "schema_version"]

logger = logging.getLogger("aiomoomoo")

# Version 1 wrote times as fixed-width ISO text ('2026-05-01T12:00:00.123456Z') and dates as
# 'YYYY-MM-DD' text, keyed versions by code text through two indexes.
_V1_MICROS: Final = (
    "(CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr({0}, 21, 6) AS INTEGER))"
)


def _v1_micros(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {_V1_MICROS.format(column)} END"


def _v1_unreadable(column: str) -> str:
    """SQL for whether a version 1 date ``column`` cannot be migrated: not ``YYYY-MM-DD``
    text of a real day from 1900 to 2100, and nothing more (the '+0 days' makes SQLite carry
    2026-02-30 over to March, so it differs). Such rows were stored before rows were checked."""
    day = f"substr({column}, 1, 10)"
    # A longer text ('2026-04-30 00:00:00') is set aside too: version 1 kept it beside the
    # plain date as another current row, and both would become one date here.
    return (
        f"(date({day}, '+0 days') IS NOT {day} OR length({column}) != 10 "
        f"OR {day} NOT BETWEEN '1900-01-01' AND '2100-12-31')"
    )


#: Where a migration from version 1 keeps the rows whose date cannot be migrated, as they were.
V1_UNREADABLE_TABLE: Final = "unreadable_v1_versions"
COUNT_V1_UNREADABLE: Final = f"SELECT COUNT(*) FROM {V1_UNREADABLE_TABLE}"
MIGRATE_FROM: Final[dict[int, tuple[str, ...]]] = {
    # The new tables are made beside the old ones and renamed once those are gone, so that no
    # rename rewrites the references other tables make to ``codes``.
    1: (
        # Kept aside, not lost: a row whose date is no day cannot be keyed, nor planned from.
        f"CREATE TABLE {V1_UNREADABLE_TABLE} AS SELECT * FROM versions "
        f"WHERE {_v1_unreadable('date')}",
        codes_table("codes_v2"),
        versions_table("versions_v2"),
        """INSERT INTO codes_v2 (code, market, last_synced, last_error)
            SELECT code, market, last_synced, last_error FROM codes ORDER BY code""",
        # Two versions of one date first seen at the same instant (a page that held the date
        # twice): the earlier was superseded as it was written, never visible; the later stays.
        f"""INSERT OR REPLACE INTO versions_v2
            SELECT c.id, CAST(replace(substr(v.date, 1, 10), '-', '') AS INTEGER),
                   {", ".join("v." + name for name in VALUE_COLUMNS)},
                   {_v1_micros("v.first_seen")}, {_v1_micros("v.last_seen")},
                   {_v1_micros("v.superseded")}
            FROM versions v JOIN codes_v2 c ON c.code = v.code
            WHERE NOT {_v1_unreadable("v.date")} ORDER BY v.rowid""",
        "DROP TABLE versions",
        "DROP TABLE codes",
        "ALTER TABLE codes_v2 RENAME TO codes",
        "ALTER TABLE versions_v2 RENAME TO versions",
        """UPDATE codes SET
            current_rows = (SELECT COUNT(*) FROM versions v
                            WHERE v.code_id = codes.id AND v.superseded IS NULL),
            revisions = (SELECT COUNT(*) FROM versions v
                         WHERE v.code_id = codes.id AND v.superseded IS NOT NULL),
            oldest = (SELECT MIN(date) FROM versions v WHERE v.code_id = codes.id),
            newest = (SELECT MAX(date) FROM versions v WHERE v.code_id = codes.id)""",
        SEGMENTS_INDEX,
    ),
}


# -- opening ------------------------------------------------------------------------------------


def _file_version(db: sqlite3.Connection, name: str) -> int | None:
    """The format version the file says it has; None for a file without one (a new file)."""
    if db.execute(HAS_META).fetchone() is None:
        return None
    row = db.execute(SELECT_SCHEMA_VERSION).fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreVersionError(
            f"{name} says its store format is {row[0]!r}, which is no version this aiomoomoo "
            f"knows (it writes version {SCHEMA_VERSION})"
        ) from None


def schema_version(db: sqlite3.Connection, name: str = "the store") -> int | None:
    """The format version of the store open on ``db``, None for a file without the store's
    tables (an empty or new file, or another program's database). Reads only; a version this
    aiomoomoo cannot read as it is (newer, or older and not yet migrated) raises
    `StoreVersionError`: a read-only connection cannot migrate."""
    found = _file_version(db, name)
    _check_not_newer(found, name)
    if found is not None and found < int(SCHEMA_VERSION):
        raise StoreVersionError(
            f"{name} is a store of format version {found}; this aiomoomoo reads version "
            f"{SCHEMA_VERSION} and migrates older ones, which needs the file opened for "
            "writing once (ShortInterestStore(path), or any aiomoomoo sync on it)"
        )
    return found


def _check_not_newer(found: int | None, name: str) -> None:
    if found is not None and found > int(SCHEMA_VERSION):
        raise StoreVersionError(
            f"{name} is a store of format version {found}, written by a newer aiomoomoo; this "
            f"one reads and writes version {SCHEMA_VERSION} (and migrates older ones): upgrade "
            "aiomoomoo to open it"
        )


_CREATED: Final = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)")
_NAMES: Final = frozenset(m.group(1) for m in map(_CREATED.search, DDL) if m is not None)
_SELECT_NAMES: Final = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"


def _migrate(db: sqlite3.Connection, found: int, name: str) -> None:
    """Take a file of version ``found`` to `SCHEMA_VERSION`, inside the caller's transaction."""
    for version in range(found, int(SCHEMA_VERSION)):
        for statement in MIGRATE_FROM[version]:
            db.execute(statement)
        if version == 1:
            (aside,) = db.execute(COUNT_V1_UNREADABLE).fetchone()
            if aside:
                logger.warning(
                    "%s held %d row(s) whose date is no YYYY-MM-DD day from 1900 to 2100 (stored "
                    "before rows were checked): kept aside in its table %s, out of the history",
                    name,
                    aside,
                    V1_UNREADABLE_TABLE,
                )


def prepare(db: sqlite3.Connection, name: str = "the store") -> None:
    """Check the format of the file open on ``db``, set the connection's options, and create
    the tables of a new file or migrate an older format, in one transaction.

    A file of a newer format than `SCHEMA_VERSION` raises `StoreVersionError` before anything
    is written to it; so does a migration that cannot be done (the file is left as it was).
    ``name`` names the file in messages.
    """
    db.execute(BUSY_TIMEOUT)
    found = _file_version(db, name)
    _check_not_newer(found, name)
    # Looked up on the module at each opening (tests set a file size limit through it).
    for pragma in _schema.PRAGMAS:
        db.execute(pragma)
    if found == int(SCHEMA_VERSION) and {n for (n,) in db.execute(_SELECT_NAMES)} >= _NAMES:
        return
    with transaction(db):
        # Read again under the write lock: another process may have created or migrated it.
        found = _file_version(db, name)
        _check_not_newer(found, name)
        migrated = found is not None and found < int(SCHEMA_VERSION)
        if migrated:
            assert found is not None
            _migrate(db, found, name)
        for statement in DDL:
            db.execute(statement)
        db.execute(SET_SCHEMA_VERSION, (SCHEMA_VERSION,))
    if migrated:
        # The old tables' pages are free now: give them back, once, rather than keep a file
        # half empty.
        db.execute(VACUUM)
