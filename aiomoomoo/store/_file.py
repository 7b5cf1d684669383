"""The store's file: opening it to read or to write, waiting while another program writes to it,
and what SQLite's failures mean to the person running the program.

A store opened to read has a read-only connection (``mode=ro``): it creates and changes
nothing, and in WAL mode it never waits for a writer. A store opened to write creates its tables
when the file lacks them and otherwise only reads on opening. A write is one transaction taken
at once (``BEGIN IMMEDIATE``): while another program holds a write transaction, each SQLite call
gives up after `BUSY_SLICE_MS` and `Waiting` calls again, sleeping in between, so Ctrl-C is
answered at once and the wait ends after the store's ``wait`` with a `StoreBusyError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from .._errors import StoreBusyError, StoreError
from . import _schema as sql
from ._format import prepare, schema_version

__all__ = ["Waiting", "check_wait", "connect", "file_errors", "lock_path"]

T = TypeVar("T")

#: Seconds between two tries of a call that found the file busy.
POLL: Final = 0.05
# A busy file is one another connection holds (SQLite's primary codes; extended ones add bits).
_BUSY: Final = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def check_wait(wait: object) -> float:
    """``wait`` as seconds, or the ValueError / TypeError naming what is allowed."""
    if isinstance(wait, bool) or not isinstance(wait, int | float):
        raise TypeError(f"wait must be a number of seconds, got {wait!r}")
    if not (math.isfinite(wait) and wait >= 0):
        raise ValueError(f"wait must be a finite number of seconds >= 0, got {wait!r}")
    return float(wait)


@dataclass(frozen=True, slots=True)
class Waiting:
    """Runs a call on the store at ``path`` again while another program's write transaction
    holds the file, for at most ``seconds``; then raises `StoreBusyError`.

    The call must change nothing when it fails busy: the store's reads, and its writes, each one
    transaction (rolled back on any error).
    """

    path: Path
    seconds: float

    def blocking(self, call: Callable[[], T]) -> T:
        """``call()``, sleeping between tries (Ctrl-C interrupts the sleep)."""
        deadline = time.monotonic() + self.seconds
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                self._give_up_unless_busy(exc, deadline)
            time.sleep(POLL)

    async def awaiting(self, call: Callable[[], T]) -> T:
        """``call()``, awaiting between tries: the event loop runs on, and a cancellation (the
        CLI's Ctrl-C) ends the wait."""
        deadline = time.monotonic() + self.seconds
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                self._give_up_unless_busy(exc, deadline)
            await asyncio.sleep(POLL)

    def _give_up_unless_busy(self, exc: sqlite3.OperationalError, deadline: float) -> None:
        if _code(exc) not in _BUSY:
            raise exc
        if time.monotonic() >= deadline:
            raise StoreBusyError(
                f"another program holds a write transaction on the store {self.path}: waited "
                f"{self.seconds:g} s for it to end; run again once it has finished, or wait longer"
            ) from exc


def lock_path(path: Path) -> Path:
    """The sync lock's file for the store at ``path``: beside the file ``path`` resolves to,
    so a symlink or another spelling of the path takes the same lock."""
    resolved = path.resolve()
    return resolved.with_name(resolved.name + ".lock")


def connect(path: Path, *, read_only: bool, waiting: Waiting) -> sqlite3.Connection:
    """A connection (autocommit mode) on the store at ``path``: read-only, or able to write
    with the tables created when the file lacks them. Raises `StoreError` for a path that is
    no store; SQLite's own errors are left to `file_errors`."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a store file")
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}")
    # Autocommit mode: the writer opens its transactions explicitly (BEGIN IMMEDIATE).
    if read_only:
        uri = path.resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        if read_only:
            for pragma in sql.READ_PRAGMAS:
                db.execute(pragma)
            if waiting.blocking(lambda: schema_version(db, str(path))) is None:
                raise StoreError(
                    f"{path} is an SQLite file but not a store: it has no store tables"
                )
        else:
            waiting.blocking(lambda: prepare(db, str(path)))
    except BaseException:
        db.close()
        raise
    return db


def _meaning(path: Path, exc: sqlite3.Error) -> str:
    """What SQLite's ``exc`` on the store at ``path`` means, and what to do."""
    code = _code(exc)
    if code == sqlite3.SQLITE_FULL:
        return (
            f"the disk holding the store {path} is full ({exc}): what was written before is "
            "kept; free some space and run again"
        )
    if code == sqlite3.SQLITE_READONLY:
        return f"the store {path} is read-only ({exc}): it can be read, not written"
    if code == sqlite3.SQLITE_NOTADB:
        return f"{path} is not a store: it is not an SQLite file ({exc})"
    if code == sqlite3.SQLITE_CORRUPT:
        return f"the store {path} is damaged ({exc}); sync into a new file"
    if code == sqlite3.SQLITE_CANTOPEN:
        return f"cannot open the store {path} ({exc}); check the path and its permissions"
    if code in _BUSY:
        return f"another program holds the store {path} ({exc}); run again once it has finished"
    return f"the store {path} failed: {exc}"


@contextlib.contextmanager
def file_errors(path: Path) -> Iterator[None]:
    """Turn an ``sqlite3`` error inside into the `StoreError` saying what it means (the SQLite
    error is its cause)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(_meaning(path, exc)) from exc
