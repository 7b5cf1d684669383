"""A durable local short-interest dataset: one SQLite file, read with SQL or as DataFrames.

The file is plain SQLite (standard library, WAL journal), so any SQLite tool can read it while a
sync writes. Table ``versions`` holds every version of every row: the current one has
``superseded IS NULL``; when a re-fetch shows a changed value (FINRA revises) the old version
gets the UTC time it was superseded and the new one is added, which is what ``as_of=`` reads.
Table ``segments`` records which stretches of each code's history are known to be complete and
where a walk continues below them; `aiomoomoo._sync` writes both, one page per transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import pandas as pd

from .._errors import StoreLockedError
from .._frames import columns_for, empty_frame
from .._options import check_codes
from .._security import Market, parse_code
from ._plan import StoredCode, SyncPlan, expected_requests
from ._sync import SyncProgress, SyncReport, is_due, sync_store
from ._write import COMPLETE_SQL, VALUE_COLUMNS, FileLock, utc_text

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["ShortInterestStore", "StoreLockedError"]

# The columns whose period-on-period change the frames add, per market.
_CHANGED: Final = {Market.US: "shares_short", Market.HK: "aggregated_short"}
_SCHEMA_VERSION: Final = "1"
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY,
    market TEXT NOT NULL,
    last_synced TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS versions (
    code TEXT NOT NULL REFERENCES codes(code),
    date TEXT NOT NULL,
    {", ".join(VALUE_COLUMNS)},
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    superseded TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS current_version ON versions(code, date)
    WHERE superseded IS NULL;
CREATE INDEX IF NOT EXISTS version_history ON versions(code, date, first_seen);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL REFERENCES codes(code),
    high TEXT,
    low TEXT,
    next_key TEXT NOT NULL
);
"""


def _check_as_of(as_of: object) -> str | None:
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
    return utc_text(as_of)


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
        # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE) where needed.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._closed = False
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives any crash of the process (kill -9 included); only a power
        # loss can take back the last commits.
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (_SCHEMA_VERSION,)
            )
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``), committed on success."""
        db = self._open()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
        client's one connection and quota; a code that fails is reported in the report's
        ``failures`` and the others go on.

        A code whose next publication cannot have happened yet (see `next_due`) is not
        requested unless ``full`` is true; ``full`` also re-reads every page of every code, to
        catch revisions deeper than the first page. ``today`` (a date) replaces the current
        date in each market's timezone for that rule. ``on_progress`` is called with a
        `SyncProgress` after every page and at the end of every code. A second sync on the same
        file while one runs raises `StoreLockedError` before anything is sent.
        """
        return await sync_store(
            self, client, codes, full=full, today=today, on_progress=on_progress
        )

    def plan(
        self, codes: Iterable[str], *, full: bool = False, today: dt.date | None = None
    ) -> SyncPlan:
        """What `sync` would do now with the same arguments: the codes it would request and
        skip, and the requests that should take (see `SyncPlan`). Nothing is sent or written."""
        securities = check_codes(codes)
        if not isinstance(full, bool):
            raise TypeError(f"full must be a bool, got {full!r}")
        due = [s for s in securities if full or is_due(self, s, today)]
        due_codes = {s.code for s in due}
        stored = {
            str(code): StoredCode(Market[str(market)], int(rows), bool(complete))
            for code, market, rows, complete in self.summary()[
                ["code", "market", "rows", "complete"]
            ].itertuples(index=False)
        }
        requests, unknown = expected_requests(due, stored, full=full)
        return SyncPlan(
            due=tuple(s.code for s in due),
            skipped=tuple(s.code for s in securities if s.code not in due_codes),
            requests=requests,
            unknown=unknown,
        )

    @contextlib.contextmanager
    def _sync_lock(self) -> Iterator[None]:
        self._open()
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise ValueError(f"{self!r} is closed")
        return self._db

    # -- reading ----------------------------------------------------------------------------

    def codes(self) -> list[str]:
        """Every code the store has synced at least once, sorted."""
        return [code for (code,) in self._open().execute("SELECT code FROM codes ORDER BY code")]

    def summary(self) -> pd.DataFrame:
        """One row per code: how many rows it holds, its oldest and newest dates, whether its
        whole history is stored, how many revised versions it keeps, and its last sync (UTC)."""
        query = f"""
            SELECT c.code, c.market,
                   COUNT(v.date) FILTER (WHERE v.superseded IS NULL),
                   MIN(v.date), MAX(v.date),
                   COUNT(v.date) FILTER (WHERE v.superseded IS NOT NULL),
                   {COMPLETE_SQL},
                   c.last_synced, c.last_error
            FROM codes c LEFT JOIN versions v ON v.code = c.code
            GROUP BY c.code ORDER BY c.code
        """
        rows = self._open().execute(query).fetchall()
        columns = ["code", "market", "rows", "oldest", "newest", "revisions"]
        columns += ["complete", "last_synced", "last_error"]
        frame = pd.DataFrame(rows, columns=columns)
        frame = frame.astype(
            {"code": "string", "market": "string", "rows": "int64", "revisions": "int64"}
        )
        frame["complete"] = frame["complete"].astype(bool)
        frame["last_synced"] = pd.to_datetime(frame["last_synced"], utc=True, format="ISO8601")
        return frame

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
        if self._open().execute("SELECT 1 FROM codes WHERE code = ?", (security.code,)).fetchone():
            frame = self._frame(security.market, moment, "code = ?", (security.code,))
            if cutoff is not None:
                keep = (frame["timestamp_str"] >= cutoff).fillna(True).to_numpy(dtype=bool)
                frame = frame[keep].reset_index(drop=True)
            return frame.drop(columns="code")
        raise KeyError(f"{security.code} is not in the store {str(self.path)!r}; sync it first")

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
        parts = [self._frame(m, moment, "market = ?", (m.name,), newest=True) for m in markets]
        if len(parts) == 1:
            return parts[0]
        dtypes = {**parts[0].dtypes.to_dict(), **parts[1].dtypes.to_dict()}
        columns = list(dict.fromkeys([*parts[0].columns, *parts[1].columns]))
        # code, both markets' official columns, the change columns, then the seen times.
        derived = [c for c in columns if "_short_" in c and c not in VALUE_COLUMNS]
        order = [c for c in columns if c not in derived and not c.endswith("_seen")]
        order += [*derived, "first_seen", "last_seen"]
        # The other market's columns are added as typed missing values: concatenating untyped
        # all-NA columns is deprecated in pandas 2.x and would change dtypes in pandas 3.
        joined = pd.concat(
            [
                part.assign(
                    **{
                        c: pd.Series(None, index=part.index, dtype=dtypes[c])
                        for c in order
                        if c not in part.columns
                    }
                )[order]
                for part in parts
            ],
            ignore_index=True,
        ).astype({c: dtypes[c] for c in order})
        return joined.sort_values("code", kind="stable", ignore_index=True)

    def _frame(
        self,
        market: Market,
        moment: str | None,
        where: str,
        params: tuple[Any, ...],
        *,
        newest: bool = False,
    ) -> pd.DataFrame:
        """Rows of ``market`` matching ``where`` (on ``codes``) as the store knew them at
        ``moment``, newest first per code, with the change columns; only the newest per code
        when ``newest``."""
        columns = columns_for(market)
        args: tuple[str, ...] = ()
        if moment is None:
            known = "v.superseded IS NULL"
        else:
            known = "v.first_seen <= ? AND (v.superseded IS NULL OR v.superseded > ?)"
            args = (moment, moment)
        names = ["code", *columns, "first_seen", "last_seen"]
        query = f"""
            SELECT v.date AS date, {", ".join("v." + name for name in names)}
            FROM versions v JOIN codes c ON c.code = v.code
            WHERE {known} AND c.{where}
        """
        if newest:
            # Each code's two newest rows: the newest, and the previous one for its change.
            query = f"""
                SELECT {", ".join(names)} FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY code ORDER BY date DESC) AS n
                    FROM ({query})
                ) WHERE n <= 2 ORDER BY code, date DESC
            """
        else:
            query = (
                query.replace("SELECT v.date AS date, ", "SELECT ")
                + " ORDER BY v.code, v.date DESC"
            )
        rows = self._open().execute(query, (*args, *params)).fetchall()
        frame = _to_frame(market, rows)
        if newest and len(frame):
            frame = frame[~frame["code"].duplicated()].reset_index(drop=True)
        return frame


def _check_market(market: object) -> Market:
    if isinstance(market, Market):
        return market
    if isinstance(market, str) and market.upper() in Market.__members__:
        return Market[market.upper()]
    raise ValueError(f"market must be Market.US, Market.HK, 'US' or 'HK', got {market!r}")


def _to_frame(market: Market, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A frame of ``code``, ``market``'s official columns, the change columns and the seen
    times, from query rows already sorted by code then date, newest first."""
    template = empty_frame(market)
    values = list(zip(*rows, strict=True)) if rows else [()] * (len(template.columns) + 3)
    data: dict[str, Any] = {"code": pd.array(values[0], dtype="string")}
    for index, column in enumerate(template.columns, start=1):
        data[column] = pd.array(list(values[index]), dtype=template.dtypes[column])
    frame = pd.DataFrame(data)
    changed = _CHANGED[market]
    current: Any = frame[changed]
    # Rows run newest first within each code, so the previous period is the next row down.
    previous = current.groupby(frame["code"], sort=False).shift(-1)
    change = current - previous
    ratio = change.astype("Float64") / previous.astype("Float64").replace(0, pd.NA) * 100
    frame[f"{changed}_previous"] = previous
    frame[f"{changed}_change"] = change
    frame[f"{changed}_change_percent"] = ratio.round(2).astype("float64")
    for offset, name in ((-2, "first_seen"), (-1, "last_seen")):
        frame[name] = pd.to_datetime(
            pd.Series(values[offset], dtype=object), utc=True, format="ISO8601"
        )
    return frame
