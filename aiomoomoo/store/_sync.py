"""The sync: the plan's codes walked newest first into the store, concurrently over one client.

Each code is one walk (`aiomoomoo._paging.walk`), run by the many-symbol runner
(`aiomoomoo._many.run_each`); the store's writer stores each page and says where the walk
continues (see `aiomoomoo.store._write` for the segments behind that), and the planner
(`aiomoomoo.store._plan`) says which codes are due.

A sync runs in two phases: first the plan's codes, probes included; then, for each market
whose frontier (the newest date any code holds) moved in the first phase (a probe, or any code
asked, found a newer date), every code of that market not asked yet. At the end it records
the frontiers that moved and, for each code asked, the frontier it was asked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from .._errors import ClientClosedError, MoomooError, StoreError
from .._many import Outcome, run_each
from .._options import END_OF_DATA, MAX_NUM, check_codes
from .._paging import ShortInterestPage, walk
from .._quota import SlidingWindowLimiter
from .._security import Market, Security
from ._file import Waiting, file_errors
from ._lock import FileLock
from ._plan import (
    CodeState,
    Frontier,
    SyncPlan,
    check_today,
    frontiers_of,
    make_plan,
    market_today,
    next_publication,
)
from ._read import StoreReader
from ._write import StoreWriter

if TYPE_CHECKING:
    from .._client import Client

__all__ = [
    "SYNC_CONCURRENCY",
    "MarketSync",
    "SyncProgress",
    "SyncReport",
    "plan_sync",
    "sync_codes",
]

logger = logging.getLogger("aiomoomoo")

#: Walks a sync runs at once. Each walk has at most one request out, so this many keep a quota
#: window of up to 32 requests full and the link busy while replies are in flight; a tighter
#: quota queues the rest, first come, first served (OpenD's own is 30 per 30 s).
SYNC_CONCURRENCY: Final = 32

Event = Literal["page", "done", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """A progress report from `ShortInterestStore.sync`.

    ``event`` is ``"page"`` after each stored page, ``"done"``/``"failed"`` at the end of a
    code, ``"skipped"`` for a code not due; the counts are totals so far. ``requests`` counts
    the requests sent and answered (or failed): one still waiting for the quota is not counted.
    ``quota_wait`` is the wall time, in seconds, during which requests were held back by the
    client's quota (a `SlidingWindowLimiter`; 0 with another limiter or none).
    """

    event: Event
    code: str
    requests: int
    rows_new: int
    rows_revised: int
    codes_done: int
    codes_total: int
    quota_wait: float


@dataclass(frozen=True, slots=True)
class MarketSync:
    """What a sync learned of one market: ``newest``, the newest published date the store
    holds (None without rows); the ``probes`` asked whether a newer publication is out, and
    whether a newer one was ``found`` (None when nothing was probed); and the first day the
    ``next_publication`` after ``newest`` can be out (None without rows)."""

    newest: dt.date | None
    probes: tuple[str, ...]
    found: bool | None
    next_publication: dt.date | None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync did: ``requests`` sent, codes ``synced`` and ``skipped`` as not due, rows
    ``rows_new`` and ``rows_revised``, ``failures`` by code, ``elapsed`` seconds, and per
    market of the codes given, a `MarketSync`.

    A failure is the exception that ended the code's walk: a `MoomooError` (a server error, a
    `ProtocolError` for a page that cannot be right, ...) or, should anything else go wrong
    while the code's pages are handled, that exception, also logged with its traceback.
    """

    requests: int
    synced: tuple[str, ...]
    skipped: tuple[str, ...]
    rows_new: int
    rows_revised: int
    failures: dict[str, Exception]
    elapsed: float
    markets: dict[Market, MarketSync] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every code due was synced."""
        return not self.failures


@dataclass(slots=True)
class _Tally:
    """The running totals of one sync, and its progress reports."""

    total: int
    limiter: object
    on_progress: Callable[[SyncProgress], None] | None
    requests: int = 0
    rows_new: int = 0
    rows_revised: int = 0
    done: int = 0
    held_before: float = 0.0
    synced: list[str] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.held_before = self._held()

    def _held(self) -> float:
        limiter = self.limiter
        return limiter.held_time if isinstance(limiter, SlidingWindowLimiter) else 0.0

    @property
    def quota_wait(self) -> float:
        return self._held() - self.held_before

    def report(self, event: Event, code: str) -> None:
        if self.on_progress is not None:
            self.on_progress(
                SyncProgress(
                    event,
                    code,
                    self.requests,
                    self.rows_new,
                    self.rows_revised,
                    self.done,
                    self.total,
                    self.quota_wait,
                )
            )


async def sync_codes(
    client: Client,
    codes: Iterable[str],
    *,
    writer: StoreWriter,
    reader: StoreReader,
    lock: FileLock,
    waiting: Waiting,
    full: bool = False,
    every: bool = False,
    today: dt.date | None = None,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncReport:
    """`ShortInterestStore.sync`: see there. ``reader`` gives the stored state the plan is made
    from, ``writer`` stores the pages and outcomes, ``lock`` is held throughout, and every read
    and write waits for another program's write transaction as ``waiting`` says, without
    blocking the event loop."""
    securities = check_codes(codes)
    for name, flag in (("full", full), ("every", every)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    today = check_today(today)
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {on_progress!r}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    tally = _Tally(len(securities), client.rate_limiter, on_progress)

    async def fetch(security: Security, key: str | None, num: int | None) -> ShortInterestPage:
        try:
            page = await client.get_short_interest(security.code, key, num)
        except ClientClosedError:
            raise  # refused before it was sent
        except MoomooError:
            tally.requests += 1
            raise
        tally.requests += 1
        return page

    async def walk_code(security: Security) -> None:
        try:
            # An SQLite error here is the store's (a full disk, a damaged file), never the code's.
            with file_errors(waiting.path):
                await walk_pages(security)
        except (ClientClosedError, StoreError):
            raise  # the sync's end, not this code's outcome
        except Exception as error:
            await waiting.awaiting(functools.partial(writer.record_outcome, security, error))
            raise
        await waiting.awaiting(functools.partial(writer.record_outcome, security, None))

    async def walk_pages(security: Security) -> None:
        segment: int | None = None
        resume = END_OF_DATA

        def continue_at(page: ShortInterestPage) -> str:
            return resume

        async with contextlib.aclosing(
            walk(fetch, security, num=MAX_NUM, continue_at=continue_at)
        ) as pages:
            async for page in pages:
                records, next_key = page.records(), page.next_key
                stored = await waiting.awaiting(
                    functools.partial(writer.store_page, security, segment, records, next_key)
                )
                segment = stored.segment
                # The stored stretch says where the walk goes on: below what it has reached
                # (a jump past rows stored before), or nowhere. ``full`` reads every page.
                resume = page.next_key if full else stored.resume_key
                tally.rows_new += stored.rows_new
                tally.rows_revised += stored.rows_revised
                if stored.newest is not None:
                    newest = dt.date.fromisoformat(stored.newest)
                    if newest > seen.get(security.market, dt.date.min):
                        seen[security.market] = newest
                tally.report("page", security.code)

    def finished(outcome: Outcome[Security, None]) -> None:
        security, error = outcome.item, outcome.error
        tally.done += 1
        if error is None:
            tally.synced.append(security.code)
            tally.report("done", security.code)
        else:
            if not isinstance(error, MoomooError):
                # Not the gateway's doing: keep the traceback for whoever has to fix it.
                logger.error(
                    "sync of %s failed: %s: %s",
                    security.code,
                    type(error).__name__,
                    error,
                    exc_info=error,
                )
            tally.failures[security.code] = error
            tally.report("failed", security.code)

    async def run(batch: list[Security]) -> None:
        # A closed client or a store that cannot be written is not one code's failure: every
        # other code would fail the same way. Anything else that goes wrong with a code's pages
        # is that code's failure alone.
        async with contextlib.aclosing(
            run_each(
                batch,
                walk_code,
                concurrency=SYNC_CONCURRENCY,
                fatal=(ClientClosedError, StoreError),
                contain=Exception,
                on_outcome=finished,
            )
        ) as outcomes:
            async for _ in outcomes:
                pass

    days = {m: today if today is not None else market_today(m) for m in Market}
    seen: dict[Market, dt.date] = {}
    frontiers: dict[Market, Frontier] = {}

    async def settle() -> set[Market]:
        """Move each market's frontier to the newest date this sync stored when that is newer,
        record every frontier not recorded yet as first seen today, and return the markets
        whose frontier moved."""
        moved = {m for m, day in seen.items() if m not in frontiers or day > frontiers[m].newest}
        for market in moved:
            frontiers[market] = Frontier(seen[market], days[market])
        fresh = {m: Frontier(f.newest, days[m]) for m, f in frontiers.items() if f.moved is None}
        frontiers.update(fresh)
        changed = {m: (frontiers[m].newest, days[m]) for m in moved | set(fresh)}
        await waiting.awaiting(functools.partial(writer.record_frontiers, changed, {}))
        return moved

    with lock:
        plan, states, recorded = await waiting.awaiting(
            functools.partial(plan_sync, reader, securities, full=full, every=every, today=today)
        )
        frontiers.update(frontiers_of(states, recorded))
        asked = set(plan.due)
        # Skipped codes may yet be asked, once the probes (or codes catching up) have answered.
        held = [s for s in securities if s.code not in asked]
        await run([s for s in securities if s.code in asked])
        moved = await settle()
        # A market's frontier moved: its publication is out, so every code of it is asked now.
        follow = [s for s in held if s.market in moved]
        _skip(tally, [s for s in held if s.market not in moved])
        asked |= {s.code for s in follow}
        await run(follow)
        moved |= await settle()
        synced = set(tally.synced)
        at_frontier = {
            s.code: frontiers[s.market].newest
            for s in securities
            if s.code in synced and s.market in frontiers
        }
        await waiting.awaiting(functools.partial(writer.record_frontiers, {}, at_frontier))
    order = {s.code: i for i, s in enumerate(securities)}
    return SyncReport(
        requests=tally.requests,
        synced=tuple(sorted(tally.synced, key=order.__getitem__)),
        skipped=tuple(s.code for s in securities if s.code not in asked),
        rows_new=tally.rows_new,
        rows_revised=tally.rows_revised,
        failures=dict(sorted(tally.failures.items(), key=lambda item: order[item[0]])),
        elapsed=loop.time() - started,
        markets={
            market: _market_sync(market, frontiers.get(market), plan.markets[market].probes, moved)
            for market in dict.fromkeys(s.market for s in securities)
        },
    )


def plan_sync(
    reader: StoreReader,
    securities: list[Security],
    *,
    full: bool,
    every: bool,
    today: dt.date | None,
) -> tuple[SyncPlan, dict[str, CodeState], dict[Market, Frontier]]:
    """The plan of a sync of ``securities`` now, with the code states and recorded frontiers
    it was made from. The rows each code has at recent dates, which only choosing probes
    needs, are read only when the plan has probes."""
    recorded = reader.frontiers()
    states = reader.code_states()
    plan = make_plan(securities, states, full=full, every=every, today=today, frontiers=recorded)
    if plan.probes:
        states = reader.code_states(recent=True)
        plan = make_plan(
            securities, states, full=full, every=every, today=today, frontiers=recorded
        )
    return plan, states, recorded


def _skip(tally: _Tally, skipped: list[Security]) -> None:
    for security in skipped:
        tally.done += 1
        tally.report("skipped", security.code)


def _market_sync(
    market: Market, frontier: Frontier | None, probes: tuple[str, ...], moved: set[Market]
) -> MarketSync:
    newest = None if frontier is None else frontier.newest
    return MarketSync(
        newest=newest,
        probes=probes,
        found=(market in moved) if probes else None,
        next_publication=None if newest is None else next_publication(market, newest),
    )
