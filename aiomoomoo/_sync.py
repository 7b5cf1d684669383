"""The sync: walk each code's pages newest first into the store, one transaction per page.

The store's ``segments`` table says which stretches of a code's history are stored complete: a
segment runs from ``high`` (its newest date) down to ``low``, and ``next_key`` is where the walk
continues below it (``"-1"`` when it reaches the start of the history). A walk always begins at
the first page with a new segment; each page extends it downwards, and when it reaches an older
segment the two merge and the walk jumps to the merged segment's ``next_key``: ``"-1"`` when the
history is whole, otherwise the saved key of an unfinished backfill. The rows and the segment
change of a page commit together, so a killed sync leaves a store the next one continues.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from zoneinfo import ZoneInfo

from ._arguments import END_OF_DATA, MAX_NUM
from ._errors import MoomooError, ProtocolError
from ._frames import _SOURCES, columns_for
from ._many import _parse_codes
from ._quota import SlidingWindowLimiter
from ._security import Market, Security

if TYPE_CHECKING:
    import sqlite3

    from ._client import Client
    from ._store import ShortInterestStore

__all__ = [
    "VALUE_COLUMNS",
    "SyncProgress",
    "SyncReport",
    "is_due",
    "next_due",
    "sync_store",
    "utc_now",
    "utc_text",
]

#: Every market's value columns, in the order the store's ``versions`` table holds them.
VALUE_COLUMNS: Final = (
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
    "aggregated_short",
    "aggregated_short_ratio",
)
#: Most walks at once: enough to keep any quota's window full while replies are in flight.
WORKERS: Final = 32
# A settlement date that falls on a weekend or holiday moves to the business day before; no run
# of closed days is longer than this, so a row is never earlier than its nominal date minus it.
_US_SLACK: Final = dt.timedelta(days=5)
_INT64_MAX: Final = 2**63 - 1


def utc_text(moment: dt.datetime) -> str:
    """``moment`` as the store writes times: fixed-width ISO UTC, so text order is time order."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    """The current time as the store writes it."""
    return utc_text(dt.datetime.now(dt.UTC))


# -- the not-due rule -----------------------------------------------------------------------


def _us_nominal_on_or_after(day: dt.date) -> dt.date:
    """The first 15th or month-end on or after ``day``."""
    if day.day <= 15:
        return day.replace(day=15)
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_due(market: Market, newest: dt.date) -> dt.date:
    """The first day on which a row newer than ``newest`` can exist for a ``market`` code.

    US rows fall on FINRA's settlement dates, the 15th and the month's last day, each moved back
    to a business day when needed (never by more than five days). If ``newest`` is one of them,
    the next row cannot be dated before the next nominal settlement date less those five days;
    a ``newest`` off that schedule makes any later day possible. HK rows are weekly, one per
    week (Friday, or an earlier day of the week when Friday is a holiday), so the next one
    cannot come before the Monday after ``newest``. A day before the returned one cannot have
    new rows; on or after it the code is requested.
    """
    if market is Market.HK:
        return newest + dt.timedelta(days=7 - newest.weekday())
    nominal = _us_nominal_on_or_after(newest)
    if newest < nominal - _US_SLACK:
        return newest + dt.timedelta(days=1)
    return _us_nominal_on_or_after(nominal + dt.timedelta(days=1)) - _US_SLACK


def _market_today(market: Market) -> dt.date:
    return dt.datetime.now(ZoneInfo(market.timezone)).date()


# -- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """A progress report from `ShortInterestStore.sync`.

    ``event`` is ``"page"`` after each stored page, ``"done"``/``"failed"`` at the end of a
    code, ``"skipped"`` for a code not due; the counts are totals so far. ``quota_wait`` is the
    wall time, in seconds, during which requests were held back by the client's quota.
    """

    event: Literal["page", "done", "failed", "skipped"]
    code: str
    requests: int
    rows_new: int
    rows_revised: int
    codes_done: int
    codes_total: int
    quota_wait: float


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync did: ``requests`` sent, codes ``synced`` and ``skipped`` as not due, rows
    ``rows_new`` and ``rows_revised``, ``failures`` by code, and ``elapsed`` seconds."""

    requests: int
    synced: tuple[str, ...]
    skipped: tuple[str, ...]
    rows_new: int
    rows_revised: int
    failures: dict[str, MoomooError]
    elapsed: float

    @property
    def ok(self) -> bool:
        """Whether every code due was synced."""
        return not self.failures


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    rows_new: int = 0
    rows_revised: int = 0
    done: int = 0
    held: int = 0  # requests waiting for the quota right now
    held_since: float = 0.0
    quota_wait: float = 0.0
    synced: list[str] = field(default_factory=list)
    failures: dict[str, MoomooError] = field(default_factory=dict)


# -- the walk -----------------------------------------------------------------------------------


async def sync_store(
    store: ShortInterestStore,
    client: Client,
    codes: Iterable[str],
    *,
    full: bool = False,
    today: dt.date | None = None,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncReport:
    """`ShortInterestStore.sync`: see there."""
    securities = _parse_codes(codes)
    if not isinstance(full, bool):
        raise TypeError(f"full must be a bool, got {full!r}")
    if today is not None and (not isinstance(today, dt.date) or isinstance(today, dt.datetime)):
        raise TypeError(f"today must be a datetime.date or None, got {today!r}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {on_progress!r}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    counts = _Counts()
    total = len(securities)
    limiter = client.rate_limiter

    def report(event: Literal["page", "done", "failed", "skipped"], code: str) -> None:
        if on_progress is not None:
            waited = counts.quota_wait
            if counts.held:
                waited += loop.time() - counts.held_since
            on_progress(
                SyncProgress(
                    event,
                    code,
                    counts.requests,
                    counts.rows_new,
                    counts.rows_revised,
                    counts.done,
                    total,
                    waited,
                )
            )

    async def request(security: Security, key: str | None) -> Any:
        held = isinstance(limiter, SlidingWindowLimiter) and not limiter.has_capacity()
        if held:
            if not counts.held:
                counts.held_since = loop.time()
            counts.held += 1
        counts.requests += 1
        try:
            return await client.get_short_interest(security.code, key, MAX_NUM)
        finally:
            if held:
                counts.held -= 1
                if not counts.held:
                    counts.quota_wait += loop.time() - counts.held_since

    async def walk(security: Security) -> None:
        segment: int | None = None
        key: str | None = None
        seen: set[str] = set()
        while True:
            page = await request(security, key)
            segment, key, new, revised = _commit_page(
                store, security, segment, page._items(), page.next_key, full=full
            )
            counts.rows_new += new
            counts.rows_revised += revised
            report("page", security.code)
            if key == END_OF_DATA:
                return
            if key in seen:
                raise ProtocolError(
                    f"OpenD returned next_key {key!r} for {security.code} again; "
                    "stopping instead of looping for ever"
                )
            seen.add(key)

    async def worker(queue: list[Security]) -> None:
        while queue:
            security = queue.pop(0)
            try:
                await walk(security)
            except MoomooError as error:
                counts.failures[security.code] = error
                _finish(store, security, error)
                counts.done += 1
                report("failed", security.code)
                continue
            _finish(store, security, None)
            counts.synced.append(security.code)
            counts.done += 1
            report("done", security.code)

    with store._sync_lock():
        due = [s for s in securities if full or is_due(store, s, today)]
        due_codes = {s.code for s in due}
        skipped = tuple(s.code for s in securities if s.code not in due_codes)
        for code in skipped:
            counts.done += 1
            report("skipped", code)
        queue = list(due)
        tasks = [loop.create_task(worker(queue)) for _ in range(min(WORKERS, len(queue)))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    order = {s.code: i for i, s in enumerate(securities)}
    return SyncReport(
        requests=counts.requests,
        synced=tuple(sorted(counts.synced, key=order.__getitem__)),
        skipped=skipped,
        rows_new=counts.rows_new,
        rows_revised=counts.rows_revised,
        failures=dict(sorted(counts.failures.items(), key=lambda item: order[item[0]])),
        elapsed=loop.time() - started,
    )


def is_due(store: ShortInterestStore, security: Security, today: dt.date | None) -> bool:
    """Whether a sync (without ``full``) would request ``security``: never synced, unfinished,
    failed last time, without rows, or `next_due` reached by ``today``."""
    db = store._open()
    state = db.execute(
        """SELECT c.last_error,
                  (SELECT COUNT(*) = 1 AND MAX(next_key) = '-1' FROM segments s
                    WHERE s.code = c.code),
                  (SELECT MAX(date) FROM versions v WHERE v.code = c.code)
           FROM codes c WHERE c.code = ?""",
        (security.code,),
    ).fetchone()
    if state is None:
        return True
    last_error, complete, newest = state
    if last_error is not None or not complete or newest is None:
        return True
    day = today if today is not None else _market_today(security.market)
    return day >= next_due(security.market, dt.date.fromisoformat(newest))


def _finish(store: ShortInterestStore, security: Security, error: MoomooError | None) -> None:
    with store._transaction() as db:
        _ensure_code(db, security)
        message = None if error is None else f"{type(error).__name__}: {error}"
        if error is None:
            db.execute(
                "UPDATE codes SET last_synced = ?, last_error = NULL WHERE code = ?",
                (utc_now(), security.code),
            )
        else:
            db.execute("UPDATE codes SET last_error = ? WHERE code = ?", (message, security.code))


def _ensure_code(db: sqlite3.Connection, security: Security) -> None:
    db.execute(
        "INSERT OR IGNORE INTO codes (code, market) VALUES (?, ?)",
        (security.code, security.market.name),
    )


# -- one page, one transaction ----------------------------------------------------------------


def _values(security: Security, item: Any) -> tuple[str, tuple[Any, ...]]:
    """A protobuf row as (trading date, value per `VALUE_COLUMNS`), None where left out."""
    own = set(columns_for(security.market))
    values: list[Any] = []
    for column in VALUE_COLUMNS:
        field_name, kind = _SOURCES[column]
        if column not in own or not item.HasField(field_name):
            values.append(None)
            continue
        value = getattr(item, field_name)
        if kind == "int" and value > _INT64_MAX:
            raise ProtocolError(f"OpenD sent a {field_name} beyond the int64 range: {value}")
        values.append(value)
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


def _commit_page(
    store: ShortInterestStore,
    security: Security,
    segment: int | None,
    items: Any,
    next_key: str,
    *,
    full: bool,
) -> tuple[int, str, int, int]:
    """Store one page and move the walk's segment; return (segment, key to walk on, new rows,
    revised rows). The key is ``"-1"`` when the walk is over."""
    rows = [_values(security, item) for item in items]
    now = utc_now()
    new = revised = 0
    code = security.code
    with store._transaction() as db:
        _ensure_code(db, security)
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
    walk_on = (END_OF_DATA if next_key == END_OF_DATA else next_key) if full else key
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
