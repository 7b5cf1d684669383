"""A durable local short-interest dataset: one SQLite file, read with SQL or as DataFrames.

The file is plain SQLite (standard library, WAL journal), so any SQLite tool can read it while a
sync writes. Table ``versions`` holds every version of every row: the current one has
``superseded IS NULL``; when a re-fetch shows a changed value (FINRA revises) the old version
gets the UTC time it was superseded and the new one is added, which is what ``as_of=`` reads.
Table ``segments`` records which stretches of each code's history are known to be complete and
where a walk continues below them. `ShortInterestStore` is the public face: the format and its
SQL are in `aiomoomoo.store._schema`, writes in ``_write``, reads in ``_read``, what a sync asks
for in ``_plan`` and the sync itself in ``_sync``.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import pandas as pd

from .._options import check_codes
from .._security import Market, parse_code
from ._lock import FileLock
from ._plan import SyncPlan, check_today, make_plan
from ._read import StoreReader
from ._schema import prepare
from ._sync import SyncProgress, SyncReport, sync_codes
from ._write import StoreWriter, utc_micros

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["ShortInterestStore"]


def _check_as_of(as_of: object) -> int | None:
    if as_of is None:
        return None
    if isinstance(as_of, str):
        try:
            as_of = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"as_of {as_of!r} is not an ISO date-time") from None
    if not isinstance(as_of, dt.datetime):
        raise TypeError(f"as_of must be a timezone-aware datetime or ISO str, got {as_of!r}")
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of!r} has no timezone; give one (the store keeps UTC)")
    return utc_micros(as_of)


def _check_since(since: object) -> str | None:
    if since is None:
        return None
    if isinstance(since, dt.datetime):
        since = since.date()
    if isinstance(since, dt.date):
        return since.isoformat()
    if isinstance(since, str):
        try:
            return dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise ValueError(f"since {since!r} is not a date in YYYY-MM-DD form") from None
    raise TypeError(f"since must be a datetime.date or a 'YYYY-MM-DD' str, got {since!r}")


def _check_market(market: object) -> Market:
    if isinstance(market, Market):
        return market
    if isinstance(market, str) and market.upper() in Market.__members__:
        return Market[market.upper()]
    raise ValueError(f"market must be Market.US, Market.HK, 'US' or 'HK', got {market!r}")


class ShortInterestStore:
    """A local short-interest dataset in one SQLite file, kept current by `sync`.

    ``path`` is the file, created with its tables when missing. Every row records when it was
    first and last seen (UTC); a value OpenD later revises keeps its old version, so ``as_of=``
    answers what was known at a given time. Use it as a context manager, or call `close`.
    Reads work while another process syncs the same file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path, got {path!r}")
        self.path = Path(path)
        self._closed = True
        # Autocommit mode: the writer opens its transactions explicitly (BEGIN IMMEDIATE).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._closed = False
        try:
            prepare(self._db, repr(str(self.path)))
        except BaseException:
            self.close()
            raise
        self._reader = StoreReader(self._db)
        self._writer = StoreWriter(self._db)
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ShortInterestStore {str(self.path)!r} {state}>"

    def close(self) -> None:
        """Close the database file."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if not getattr(self, "_closed", True):
            self.close()
            _warn(f"unclosed {self!r}; use 'with' or close()", ResourceWarning, source=self)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    # -- syncing ----------------------------------------------------------------------------

    async def sync(
        self,
        client: Client,
        codes: Iterable[str],
        *,
        full: bool = False,
        today: dt.date | None = None,
        on_progress: Callable[[SyncProgress], None] | None = None,
    ) -> SyncReport:
        """Bring ``codes`` up to date from OpenD through ``client``; return a `SyncReport`.

        Each code's pages are walked newest first and the walk stops at the first page that
        reaches rows already stored (the first page is always read, so revisions of the newest
        rows are caught); a code never seen gets its whole history. Every page is committed with
        the walk's position in one transaction, so a killed sync loses nothing and the next one
        continues an unfinished backfill where it stopped. Codes run concurrently over the
        client's one connection and quota; a code that fails (an unknown code, a server error,
        a gateway whose pages make no progress) is reported in the report's ``failures`` and
        the others go on; a closed client ends the sync with `ClientClosedError`.

        A code whose next publication cannot have happened yet (see `next_due`) is not
        requested unless ``full`` is true; ``full`` also re-reads every page of every code, to
        catch revisions deeper than the first page. ``today`` (a date) replaces the current
        date in each market's timezone for that rule. ``on_progress`` is called with a
        `SyncProgress` after every page and at the end of every code. A second sync on the same
        file while one runs raises `StoreLockedError` before anything is sent.
        """
        self._check_open()
        return await sync_codes(
            client,
            codes,
            writer=self._writer,
            reader=self._reader,
            lock=self._lock,
            full=full,
            today=today,
            on_progress=on_progress,
        )

    def plan(
        self, codes: Iterable[str], *, full: bool = False, today: dt.date | None = None
    ) -> SyncPlan:
        """What `sync` would do now with the same arguments: the codes it would request and
        skip, and the requests that should take (see `SyncPlan`). Nothing is sent or written."""
        securities = check_codes(codes)
        if not isinstance(full, bool):
            raise TypeError(f"full must be a bool, got {full!r}")
        today = check_today(today)
        self._check_open()
        return make_plan(securities, self._reader.code_states(), full=full, today=today)

    # -- reading ----------------------------------------------------------------------------

    def codes(self) -> list[str]:
        """Every code the store has synced at least once, sorted."""
        self._check_open()
        return self._reader.codes()

    def summary(self) -> pd.DataFrame:
        """One row per code: how many rows it holds, its oldest and newest dates, whether its
        whole history is stored, how many revised versions it keeps, and its last sync (UTC)."""
        self._check_open()
        return self._reader.summary()

    def history(
        self,
        code: str,
        *,
        since: dt.date | str | None = None,
        as_of: dt.datetime | str | None = None,
    ) -> pd.DataFrame:
        """``code``'s stored history, newest first, with the official columns and dtypes.

        Change columns follow for the market's short position (``shares_short`` for US,
        ``aggregated_short`` for HK): ``<column>_previous`` (the previous period's value),
        ``<column>_change`` and ``<column>_change_percent``, FINRA's ``(current - previous) /
        previous * 100`` rounded to hundredths; then ``first_seen`` and ``last_seen`` (UTC).
        ``since`` (a date) leaves out older rows; ``as_of`` (an aware datetime) shows the rows
        and values as the store knew them at that moment. A code never synced raises KeyError.
        """
        security = parse_code(code)
        cutoff, moment = _check_since(since), _check_as_of(as_of)
        self._check_open()
        if not self._reader.has(security):
            raise KeyError(f"{security.code} is not in the store {str(self.path)!r}; sync it first")
        return self._reader.history(security, since=cutoff, as_of=moment)

    def latest(
        self, market: Market | str | None = None, *, as_of: dt.datetime | str | None = None
    ) -> pd.DataFrame:
        """One row per code at its newest date, for screens across codes, sorted by code.

        ``market`` (`Market` or ``"US"``/``"HK"``) keeps one market's codes and columns; without
        it the columns are both markets' (a column of the other market is missing on a row).
        ``as_of`` reads the store as it was then. Columns as in `history`, after ``code``.
        """
        moment = _check_as_of(as_of)
        markets = [Market.US, Market.HK] if market is None else [_check_market(market)]
        self._check_open()
        return self._reader.latest(markets, as_of=moment)

    def history_batches(
        self,
        codes: Iterable[str] | None = None,
        *,
        since: dt.date | str | None = None,
        as_of: dt.datetime | str | None = None,
        rows: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """The stored histories of ``codes`` (every stored code when None) as frames of about
        ``rows`` rows each, for exports that do not fit in memory at once.

        Each frame has a leading ``code`` column, then the columns of `history` (both markets'
        when the codes span both, the other market's missing on a row); codes come sorted, each
        newest first, and a code's rows are never split across two frames. The frames are read
        from one snapshot of the file. ``since`` and ``as_of`` are as in `history`. A code never
        synced raises KeyError before any frame is made.
        """
        cutoff, moment = _check_since(since), _check_as_of(as_of)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows must be a positive int, got {rows!r}")
        wanted = None if codes is None else list(dict.fromkeys(check_codes(codes)))
        self._check_open()
        if wanted is None:
            markets = set(self._reader.markets())
        else:
            stored = set(self._reader.codes())
            for security in wanted:
                if security.code not in stored:
                    raise KeyError(
                        f"{security.code} is not in the store {str(self.path)!r}; sync it first"
                    )
            markets = {security.market for security in wanted}
        chosen = [m for m in (Market.US, Market.HK) if m in markets] or [Market.US, Market.HK]
        return self._reader.batches(
            None if wanted is None else sorted(s.code for s in wanted),
            chosen,
            since=cutoff,
            as_of=moment,
            size=rows,
        )
