"""The sync: each code's pages walked newest first into the store, codes concurrently over one
client, and the rule that decides which codes are not due (`next_due`).

How a page is stored, and how a walk knows where to stop or continue, is in
`aiomoomoo._store_write`.
"""

from __future__ import annotations

import asyncio
import calendar
import collections
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from zoneinfo import ZoneInfo

from .._errors import ClientClosedError, MoomooError, ProtocolError
from .._options import END_OF_DATA, MAX_NUM, check_codes
from .._quota import SlidingWindowLimiter
from .._security import Market, Security
from ._write import COMPLETE_SQL, StoreHandle, commit_page, record_outcome

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["SyncProgress", "SyncReport", "is_due", "next_due", "sync_store"]

#: Most walks at once: enough to keep any quota's window full while replies are in flight.
WORKERS: Final = 32
# A settlement date that falls on a weekend or holiday moves to the business day before; no run
# of closed days is longer than this, so a row is never earlier than its nominal date minus it.
_US_SLACK: Final = dt.timedelta(days=5)


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
    store: StoreHandle,
    client: Client,
    codes: Iterable[str],
    *,
    full: bool = False,
    today: dt.date | None = None,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncReport:
    """`ShortInterestStore.sync`: see there."""
    securities = check_codes(codes)
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
            segment, key, new, revised = commit_page(
                store, security, segment, page.records(), page.next_key, full=full
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

    async def worker(queue: collections.deque[Security]) -> None:
        while queue:
            security = queue.popleft()
            try:
                await walk(security)
            except ClientClosedError:
                # Not this code's fault, and every other code would fail the same way.
                raise
            except MoomooError as error:
                counts.failures[security.code] = error
                record_outcome(store, security, error)
                counts.done += 1
                report("failed", security.code)
                continue
            record_outcome(store, security, None)
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
        queue = collections.deque(due)
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


def is_due(store: StoreHandle, security: Security, today: dt.date | None) -> bool:
    """Whether a sync (without ``full``) would request ``security``: never synced, unfinished,
    failed last time, without rows, or `next_due` reached by ``today``."""
    db = store._open()
    state = db.execute(
        f"""SELECT c.last_error, {COMPLETE_SQL},
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
