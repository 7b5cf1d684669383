"""The sync: the plan's codes walked newest first into the store, concurrently over one client.

Each code is one walk (`aiomoomoo._paging.walk`), run by the many-symbol runner
(`aiomoomoo._many.run_each`); the store's writer stores each page and says where the walk
continues (see `aiomoomoo.store._write` for the segments behind that), and the planner
(`aiomoomoo.store._plan`) says which codes are due.
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
from .._security import Security
from ._file import Waiting, file_errors
from ._lock import FileLock
from ._plan import check_today, make_plan
from ._read import StoreReader
from ._write import StoreWriter

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["SYNC_CONCURRENCY", "SyncProgress", "SyncReport", "sync_codes"]

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
class SyncReport:
    """What a sync did: ``requests`` sent, codes ``synced`` and ``skipped`` as not due, rows
    ``rows_new`` and ``rows_revised``, ``failures`` by code, and ``elapsed`` seconds.

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
    today: dt.date | None = None,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncReport:
    """`ShortInterestStore.sync`: see there. ``reader`` gives the stored state the plan is made
    from, ``writer`` stores the pages and outcomes, ``lock`` is held throughout, and every read
    and write waits for another program's write transaction as ``waiting`` says, without
    blocking the event loop."""
    securities = check_codes(codes)
    if not isinstance(full, bool):
        raise TypeError(f"full must be a bool, got {full!r}")
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

    with lock:
        states = await waiting.awaiting(reader.code_states)
        plan = make_plan(securities, states, full=full, today=today)
        for code in plan.skipped:
            tally.done += 1
            tally.report("skipped", code)
        due_codes = set(plan.due)
        due = [s for s in securities if s.code in due_codes]
        # A closed client or a store that cannot be written is not one code's failure: every
        # other code would fail the same way. Anything else that goes wrong with a code's pages
        # is that code's failure alone.
        async with contextlib.aclosing(
            run_each(
                due,
                walk_code,
                concurrency=SYNC_CONCURRENCY,
                fatal=(ClientClosedError, StoreError),
                contain=Exception,
                on_outcome=finished,
            )
        ) as outcomes:
            async for _ in outcomes:
                pass
    order = {s.code: i for i, s in enumerate(securities)}
    return SyncReport(
        requests=tally.requests,
        synced=tuple(sorted(tally.synced, key=order.__getitem__)),
        skipped=plan.skipped,
        rows_new=tally.rows_new,
        rows_revised=tally.rows_revised,
        failures=dict(sorted(tally.failures.items(), key=lambda item: order[item[0]])),
        elapsed=loop.time() - started,
    )
