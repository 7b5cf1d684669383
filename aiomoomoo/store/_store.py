"""A durable local short-interest dataset: one SQLite file, read with SQL or as DataFrames.

The file is plain SQLite (standard library, WAL journal), so any SQLite tool can read it while a
sync writes. Table ``versions`` holds every version of every row: the current one has
``superseded IS NULL``; when a re-fetch shows a changed value (FINRA revises) the old version
gets the UTC time it was superseded and the new one is added, which is what ``as_of=`` reads.
Table ``segments`` records which stretches of each code's history are known to be complete and
where a walk continues below them; ``frontiers`` and ``asked`` what the schedule of publications
has taught the syncs. `ShortInterestStore` is the public face: the format and its
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
from typing import TYPE_CHECKING, Final, Self, TypeVar

import pandas as pd

from .._options import check_codes
from .._security import Market, parse_code
from ._args import check_as_of, check_market, check_screen, check_since
from ._arrow import PARTITIONS, read_arrow, write_dataset
from ._file import Waiting, check_wait, connect, file_errors, lock_path
from ._lock import FileLock
from ._plan import SyncPlan, check_today
from ._read import StoreReader
from ._sync import SyncProgress, SyncReport, plan_sync, sync_codes
from ._write import StoreWriter

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

    from .._client import Client

__all__ = ["DEFAULT_WAIT", "ShortInterestStore"]

T = TypeVar("T")

#: Seconds a write waits for another program's write transaction on the file by default.
DEFAULT_WAIT: Final = 30.0


class ShortInterestStore:
    """A local short-interest dataset in one SQLite file, kept current by `sync`.

    ``path`` is the file, created with its tables when missing. Every row records when it was
    first and last seen (UTC); a value OpenD later revises keeps its old version, so ``as_of=``
    answers what was known at a given time. Use it as a context manager, or call `close`.

    Opening and reading never wait for a writer: reads work while another process syncs the
    same file or holds a write transaction on it. With ``read_only`` the file is opened
    read-only: it must be a store, nothing is created or changed (a read-only file can be
    read), and `sync` is refused. A write waits for another program's write transaction on
    the file for at most ``wait`` seconds, then raises `StoreBusyError`; the wait answers
    Ctrl-C at once. A file that cannot be used (a directory, not an SQLite file or not a store,
    damaged, read-only when writing, a full disk) raises `StoreError` saying so.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        wait: float = DEFAULT_WAIT,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or path, got {path!r}")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be a bool, got {read_only!r}")
        self.path = Path(path)
        #: Whether the store was opened read-only.
        self.read_only = read_only
        self._waiting = Waiting(self.path, check_wait(wait))
        self._closed = True
        with file_errors(self.path):
            self._db: sqlite3.Connection = connect(
                self.path, read_only=read_only, waiting=self._waiting
            )
        self._closed = False
        self._reader = StoreReader(self._db)
        self._writer = StoreWriter(self._db)
        self._lock = FileLock(lock_path(self.path))

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

    def _read(self, call: Callable[[], T]) -> T:
        """``call()``, a read of the file, with SQLite's errors said as `StoreError`."""
        self._check_open()
        with file_errors(self.path):
            return self._waiting.blocking(call)

    # -- syncing ----------------------------------------------------------------------------

    async def sync(
        self,
        client: Client,
        codes: Iterable[str],
        *,
        full: bool = False,
        every: bool = False,
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
        a gateway whose pages make no progress, a page with a row whose date cannot be right,
        or anything else going wrong with its pages) is reported in the report's ``failures``
        and the others go on, and nothing of a refused page is stored; a closed client ends
        the sync with `ClientClosedError`.

        A refresh costs what was published, plus a few probes. The store keeps each market's
        frontier (the newest date any code holds) and the frontier each code was last asked
        at. Besides codes never synced, unfinished or failed, a sync asks codes behind their
        market's frontier: once after it moves, and on each run for a few business days after
        (a publication may reach some codes late). A code at the frontier is not asked; once
        the market's next publication can be out (its next settlement date plus the market's
        least lag), up to three probe codes are asked, and if one finds a newer date every
        code of that market is asked in the same run. The report's ``markets`` says what was
        found and when the next publication is expected.

        ``every`` asks every code for its new rows, whatever the schedule; ``full`` also
        re-reads every page of every code, to catch revisions deeper than the first page.
        ``today`` (a date) replaces the current date in each market's timezone for the
        schedule. ``on_progress`` is called with a `SyncProgress` after every page and at the
        end of every code. A second sync on the same file (by any path to it) while one runs
        raises `StoreLockedError` before anything is sent. A write that waited ``wait`` seconds
        for another program raises `StoreBusyError`, and a file that cannot be written
        (read-only, damaged, a full disk) `StoreError`: both end the sync, keeping every page
        committed before.
        """
        self._check_open()
        if self.read_only:
            raise ValueError(f"{self!r} was opened with read_only=True; open it to write to sync")
        with file_errors(self.path):
            return await sync_codes(
                client,
                codes,
                writer=self._writer,
                reader=self._reader,
                lock=self._lock,
                waiting=self._waiting,
                full=full,
                every=every,
                today=today,
                on_progress=on_progress,
            )

    def plan(
        self,
        codes: Iterable[str],
        *,
        full: bool = False,
        every: bool = False,
        today: dt.date | None = None,
    ) -> SyncPlan:
        """What `sync` would do now with the same arguments: the codes it would request first
        (probes included) and skip, and the requests that should take (see `SyncPlan`; if a
        probe finds a publication, up to ``follow_up`` more). Nothing is sent or written."""
        securities = check_codes(codes)
        for name, flag in (("full", full), ("every", every)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        today = check_today(today)
        return self._read(
            lambda: plan_sync(self._reader, securities, full=full, every=every, today=today)[0]
        )

    # -- reading ----------------------------------------------------------------------------

    def codes(self) -> list[str]:
        """Every code the store has synced at least once, sorted."""
        return self._read(self._reader.codes)

    def summary(self) -> pd.DataFrame:
        """One row per code: how many rows it holds, its oldest and newest dates, whether its
        whole history is stored, how many revised versions it keeps, and its last sync (UTC)."""
        return self._read(self._reader.summary)

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
        cutoff, moment = check_since(since), check_as_of(as_of)
        if not self._read(lambda: self._reader.has(security)):
            raise KeyError(f"{security.code} is not in the store {str(self.path)!r}; sync it first")
        return self._read(lambda: self._reader.history(security, since=cutoff, as_of=moment))

    def latest(
        self, market: Market | str | None = None, *, as_of: dt.datetime | str | None = None
    ) -> pd.DataFrame:
        """One row per code at its newest date, for screens across codes, sorted by code.

        ``market`` (`Market` or ``"US"``/``"HK"``) keeps one market's codes and columns; without
        it the columns are both markets' (a column of the other market is missing on a row).
        ``as_of`` reads the store as it was then. Columns as in `history`, after ``code``.
        """
        moment = check_as_of(as_of)
        markets = [Market.US, Market.HK] if market is None else [check_market(market)]
        return self._read(lambda: self._reader.latest(markets, as_of=moment))

    def to_arrow(
        self,
        market: Market | str | None = None,
        *,
        codes: Iterable[str] | None = None,
        since: dt.date | str | None = None,
        as_of: dt.datetime | str | None = None,
    ) -> pa.Table:
        """Every stored row as a ``pyarrow.Table``, built from the query without pandas.

        The columns are `latest`'s (``code``, the official columns, the change columns,
        ``first_seen``, ``last_seen``) with one fixed type each: ``string``, ``int64``,
        ``double`` and ``timestamp[us, tz=UTC]``, so tables of different stores, days or markets
        concatenate. Rows run by code, newest first. ``market`` keeps one market's codes and
        columns; ``codes`` keeps those codes (each must be in the store, else KeyError);
        ``since`` and ``as_of`` as in `history`. Needs pyarrow (``aiomoomoo[parquet]``);
        ``polars.from_arrow(store.to_arrow())`` makes a Polars frame of it.
        """
        markets = [Market.US, Market.HK] if market is None else [check_market(market)]
        wanted = None if codes is None else [s.code for s in check_codes(codes)]
        cutoff, moment = check_since(since), check_as_of(as_of)
        if wanted is not None:
            unknown = sorted(set(wanted) - set(self._read(self._reader.codes)))
            if unknown:
                raise KeyError(
                    f"{unknown[0]} is not in the store {str(self.path)!r}; sync it first"
                )
        return self._read(
            lambda: read_arrow(self._db, markets, codes=wanted, since=cutoff, as_of=moment)
        )

    def write_dataset(
        self,
        directory: str | os.PathLike[str],
        *,
        partition_by: Iterable[str] = ("market",),
        codes: Iterable[str] | None = None,
        since: dt.date | str | None = None,
        as_of: dt.datetime | str | None = None,
    ) -> int:
        """Write `to_arrow`'s rows as a Hive-partitioned Parquet dataset; return the row count.

        ``directory`` must be new or empty. ``partition_by`` is ``"market"``, ``"year"`` or
        both, in nesting order: ``market=US/year=2026/part-0.parquet``. Every file holds the
        same schema, both markets' columns, so readers (pyarrow.dataset, Polars, DuckDB's
        ``read_parquet(..., hive_partitioning = true)``, Spark) see one table with ``market``
        and ``year`` as columns. ``codes``, ``since`` and ``as_of`` as in `to_arrow`.
        """
        if isinstance(partition_by, str):
            raise TypeError(f"partition_by must be a list of names, not one str {partition_by!r}")
        parts = list(partition_by)
        bad = [p for p in parts if p not in PARTITIONS] or parts[len(set(parts)) :]
        if bad or not parts:
            raise ValueError(
                f"partition_by must name 'market' and/or 'year', once each, got {parts!r}"
            )
        target = Path(directory)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise FileExistsError(17, "already exists: name a new or empty directory", str(target))
        table = self.to_arrow(codes=codes, since=since, as_of=as_of)
        write_dataset(table, target, parts)
        return int(table.num_rows)

    def screen(
        self,
        market: Market | str | None = None,
        *,
        as_of: dt.datetime | str | None = None,
        min_days_to_cover: float | None = None,
        min_short_percent: float | None = None,
        min_change_percent: float | None = None,
        max_change_percent: float | None = None,
        by: str | None = None,
        ascending: bool = False,
        top: int | None = None,
    ) -> pd.DataFrame:
        """Each code's newest row at ``as_of`` with its change columns, filtered and sorted,
        computed in SQLite (one query per market, no history built per code).

        The columns are `latest`'s. Conditions keep the rows whose value is present and within
        the bound: ``min_days_to_cover`` (US only: HK short interest has none, so it is refused
        for HK and, without ``market="US"``, for both markets), ``min_short_percent`` (US
        ``short_percent``, HK ``aggregated_short_ratio``), ``min_change_percent`` and
        ``max_change_percent`` (the short position's percent change from the previous period,
        compared before it is rounded to hundredths for the column). ``by`` sorts by a column,
        largest first (``ascending=True`` for smallest), missing values last, ties by code;
        ``"change"`` and ``"change_percent"`` name each market's own change column. Without
        ``by`` rows run by code. ``top`` keeps the first ``top`` rows.
        """
        moment = check_as_of(as_of)
        markets = [Market.US, Market.HK] if market is None else [check_market(market)]
        screen = check_screen(
            markets,
            one_market=market is not None,
            bounds={
                "min_days_to_cover": min_days_to_cover,
                "min_short_percent": min_short_percent,
                "min_change_percent": min_change_percent,
                "max_change_percent": max_change_percent,
            },
            by=by,
            ascending=ascending,
            top=top,
        )
        return self._read(
            lambda: self._reader.screen(
                markets,
                as_of=moment,
                conditions=screen.conditions,
                by=screen.by,
                ascending=screen.ascending,
                top=screen.top,
            )
        )

    def changes(
        self,
        market: Market | str,
        *,
        since: dt.date | str | None = None,
        as_of: dt.datetime | str | None = None,
    ) -> pd.DataFrame:
        """Per code of ``market``, the newest publication against the one before it, largest
        absolute percent change first.

        Columns: ``code``, ``date`` and ``previous_date`` (``YYYY-MM-DD``), the short position
        (``shares_short`` for US, ``aggregated_short`` for HK), its ``_previous`` value, its
        ``_change`` and ``_change_percent`` (rounded to hundredths; the order uses the exact
        value). Codes without a change to show (one row, a previous value of 0 or missing)
        come last; equal changes run by code. ``since`` (a date) compares with the code's row
        on or before that date instead of the one before. ``as_of`` reads the store as it was
        then: a value revised later counts with its old version.
        """
        chosen = check_market(market)
        cutoff, moment = check_since(since), check_as_of(as_of)
        return self._read(lambda: self._reader.changes(chosen, since=cutoff, as_of=moment))

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
        cutoff, moment = check_since(since), check_as_of(as_of)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows must be a positive int, got {rows!r}")
        wanted = None if codes is None else list(dict.fromkeys(check_codes(codes)))
        if wanted is None:
            markets = set(self._read(self._reader.markets))
        else:
            stored = set(self._read(self._reader.codes))
            for security in wanted:
                if security.code not in stored:
                    raise KeyError(
                        f"{security.code} is not in the store {str(self.path)!r}; sync it first"
                    )
            markets = {security.market for security in wanted}
        chosen = [m for m in (Market.US, Market.HK) if m in markets] or [Market.US, Market.HK]
        batches = self._reader.batches(
            None if wanted is None else sorted(s.code for s in wanted),
            chosen,
            since=cutoff,
            as_of=moment,
            size=rows,
        )
        return self._guarded(batches)

    def _guarded(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """``batches`` read as every other read is: on an open store (closing it ends them with
        the store's ValueError), with SQLite's errors said as `StoreError`."""
        with file_errors(self.path):
            while True:
                self._check_open()
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                yield batch
