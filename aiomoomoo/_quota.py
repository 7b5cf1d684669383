"""Client-side request quota: never more than N requests in any sliding window of T seconds.

OpenD counts requests as they arrive and refuses the one that would make N+1 inside any T-second
window. A limiter that stamps requests when they leave cannot be exact, because the server's
arrival time lies somewhere between the send and the reply. `SlidingWindowLimiter` therefore
counts a request from the moment it is granted until ``period`` seconds after its reply arrived:
the server's arrival stamp for it is no later than that reply, so a request granted ``period``
after it can never land in the same server window, whatever the network's jitter. The price is one
round trip per window (well under a millisecond against a local OpenD), and no fudge factor.

Grants are first come, first served; a cancelled waiter gives its place up and a request cancelled
after its grant but before it was sent gives the slot back.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from bisect import bisect_right
from contextlib import AbstractAsyncContextManager
from typing import Final

from ._budget import GrantedSlot, QuotaSlot, SlotContext

__all__ = ["SlidingWindowLimiter"]

logger = logging.getLogger("aiomoomoo")

# How long finished requests are remembered at least. OpenD's budgets are per 30 s, so a budget
# learned from a refusal can count every request it covers.
_REMEMBER: Final = 60.0


class SlidingWindowLimiter:
    """At most ``max_requests`` requests in any ``period`` seconds, exactly, shared by all tasks.

    Use one instance per OpenD account: pass it as ``rate_limit=`` to every
    `aiomoomoo.Client` that shares the account's quota. Clients use `slot`, which
    knows when the reply came; `acquire` is for other code that wants the same budget and
    counts from the grant. It serves one event loop at a time, and may move on to another once
    the first has finished (successive ``asyncio.run()`` calls); `tighten` adopts a budget the
    server states.
    """

    __slots__ = (
        "_done",
        "_granted",
        "_granted_slot",
        "_held",
        "_held_since",
        "_in_flight",
        "_limits",
        "_longest",
        "_slot",
        "_timer",
        "_timer_at",
        "_timer_loop",
        "_waiters",
    )

    def __init__(self, max_requests: int = 30, period: float = 30.0) -> None:
        window = _check_window(max_requests, period)
        # Every window in force, shortest first: the one given here, and the budgets `tighten`
        # learns from the server beside it.
        self._limits: tuple[tuple[int, float], ...] = (window,)
        self._longest = max(window[1], _REMEMBER)
        self._in_flight = 0
        self._granted = 0
        # Seconds during which some request waited for a slot, and since when one waits now.
        self._held = 0.0
        self._held_since: float | None = None
        # Completion times, appended as requests finish, so they are already in order.
        self._done: collections.deque[float] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        # Stateless, so one serves every request.
        self._slot = SlotContext(self._acquire, self._release)
        self._granted_slot = GrantedSlot(self._release, self._give_back)

    def __repr__(self) -> str:
        limits = "+".join(f"{count}/{period:g}s" for count, period in self._limits)
        return (
            f"<SlidingWindowLimiter {limits} "
            f"in_flight={self._in_flight} recent={self._recent()} "
            f"waiting={sum(not w.done() for w in self._waiters)}>"
        )

    def _recent(self) -> int:
        """How many finished requests the longest window in force still counts."""
        loop = _running_loop()
        # asyncio's loops keep time.monotonic(), so outside one it stands in for theirs.
        now = loop.time() if loop is not None else time.monotonic()
        horizon = now - max(period for _, period in self._limits)
        return len(self._done) - bisect_right(self._done, horizon)

    @property
    def max_requests(self) -> int:
        """How many requests the (shortest) window admits."""
        return self._limits[0][0]

    @property
    def period(self) -> float:
        """The (shortest) window's length in seconds."""
        return self._limits[0][1]

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        """Every ``(max_requests, period)`` window in force, shortest first.

        One window unless `tighten` learned budgets from the server that no single window covers.
        """
        return self._limits

    def tighten(self, max_requests: int, period: float) -> bool:
        """Adopt a budget the server stated, ``max_requests`` per ``period`` s, if ours overruns it.

        Nothing changes (and False is returned) when a window already in force keeps within the
        budget: ``n`` per ``p`` seconds lets at most ``n * ceil(period / p)`` requests into any
        ``period`` seconds, so a budget the limiter already honours (a refusal caused by another
        process sharing the account) never loosens it. Otherwise the budget becomes one more
        window of the limiter for the rest of its life, enforced beside the window it was
        created with and any budget learned before: a stated budget only ever adds a ceiling,
        so the limiter never lets through more than its user asked for, nor more than any
        budget the server has stated. A window leaves `limits` only when the new budget allows
        no more requests over a period at least as long: then it can never be the one that holds
        a request back. One the new budget implies only by adding up its shorter periods stays,
        since requests granted before the change did not keep to the new budget and only the old
        window still counts them. Queued requests wait by the new windows. The change is logged
        once, as a warning on the ``aiomoomoo`` logger.
        """
        window = _check_window(max_requests, period)
        if any(_keeps_within(limit, window) for limit in self._limits):
            return False
        kept = [limit for limit in self._limits if not _covers(window, limit)]
        before = self._limits
        self._limits = tuple(sorted([window, *kept], key=lambda limit: limit[1]))
        self._longest = max(_REMEMBER, *(limit[1] for limit in self._limits))
        logger.warning(
            "OpenD allows %d requests per %g s, fewer than this client's limiter (%s) lets "
            "through: limiting to %s from now on",
            window[0],
            window[1],
            _describe(before),
            _describe(self._limits),
        )
        # The window given up may have been the one that held the queue back longest. Without
        # a running loop nothing can be waiting on this one.
        if _running_loop() is not None:
            self._wake()
        return True

    def has_capacity(self) -> bool:
        """Whether a request could be granted right now without waiting."""
        now = asyncio.get_running_loop().time()
        return not self._waiting() and self._next_free(now) == now

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a slot, run the body (send and await the reply), then start its cool-down."""
        return self._slot

    def _release(self) -> None:
        self._in_flight -= 1
        self._done.append(_finished_at(asyncio.get_running_loop()))
        self._wake()

    async def grant(self) -> QuotaSlot:
        """Wait for a slot and hand it to the request, for the client; other code uses `acquire`
        or `slot`. The slot is released (its cool-down counted from then) once OpenD is past the
        request, which may be after its caller left, or given back if it was never sent."""
        await self._acquire()
        return self._granted_slot

    def _give_back(self) -> None:
        self._in_flight -= 1
        self._granted -= 1
        self._wake()

    async def acquire(self) -> None:
        """Wait for a slot and count it as used from now (for callers without replies)."""
        await self._acquire()
        self._in_flight -= 1
        self._done.append(_finished_at(asyncio.get_running_loop()))
        # The used count is unchanged, but the timer may have been armed only for in-flight
        # slots (or not at all): without this, a waiter behind would never be woken.
        self._wake()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    # -- what a progress display reads ------------------------------------------------------

    @property
    def granted(self) -> int:
        """Requests granted a slot so far (those given back unsent are not counted): the
        requests that have left, or are leaving, for OpenD."""
        return self._granted

    @property
    def queued(self) -> int:
        """Requests waiting for a slot right now."""
        return sum(not w.done() for w in self._waiters)

    @property
    def held_time(self) -> float:
        """Seconds so far during which at least one request waited for a slot."""
        if self._held_since is None:
            return self._held
        return self._held + max(0.0, _now() - self._held_since)

    def wait_time(self) -> float:
        """Seconds until one more request could be granted, were every request in flight to
        be answered now; 0 when one could go at once."""
        return self.eta(1)

    def eta(self, requests: int) -> float:
        """The least seconds until ``requests`` more requests can all have been granted.

        It assumes every request in flight is answered now and each new one the moment it is
        sent: a lower bound, and the figure a display can count down from. The queue counts
        too: requests already waiting go first.
        """
        if not isinstance(requests, int) or isinstance(requests, bool) or requests < 0:
            raise ValueError(f"requests must be an int >= 0, got {requests!r}")
        total = requests + self.queued
        if total == 0:
            return 0.0
        now = _now()
        horizon = now - max(period for _, period in self._limits)
        stamps = [d for d in self._done if d > horizon] + [now] * self._in_flight
        at = now
        for _ in range(total):
            for count, period in self._limits:
                if len(stamps) >= count:
                    at = max(at, stamps[-count] + period)
            stamps.append(at)
        return at - now

    # -- internals --------------------------------------------------------------------------

    def _waiting(self) -> bool:
        waiters = self._waiters
        # A waiter of a loop that was closed under it can never run: granting it would raise
        # and lose the slot, keeping it would block the queue for ever.
        while waiters and (waiters[0].done() or waiters[0].get_loop().is_closed()):
            waiters.popleft()
        if not waiters and self._held_since is not None:
            self._held += _now() - self._held_since
            self._held_since = None
        return bool(waiters)

    def _next_free(self, now: float) -> float | None:
        """When one more request fits in every window: ``now`` if it does, None if only a
        reply can make room; stamps too old for any window are dropped on the way."""
        # Stamps are kept for at least _REMEMBER seconds, longer than a window needs, so a
        # window that `tighten` adds later counts the requests sent before it was learned.
        done, longest = self._done, self._longest
        while done and done[0] + longest <= now:
            done.popleft()
        at = now
        for count, period in self._limits:
            # The stamps still inside this window: the same test as the expiry above, so the
            # time a timer is armed for is exactly the time the window is seen to free.
            first = 0 if period == longest else bisect_right(done, now, key=lambda d: d + period)
            recent = len(done) - first
            excess = self._in_flight + recent - count + 1
            if excess <= 0:
                continue
            if excess > recent:
                return None
            at = max(at, done[first + excess - 1] + period)
        return at

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._waiting() and self._next_free(now) == now:
            self._in_flight += 1
            self._granted += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        if self._held_since is None:
            self._held_since = now
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted, then cancelled before the request could use it: nothing was sent.
                self._in_flight -= 1
                self._granted -= 1
                self._wake()
            raise

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        stale = self._timer_loop
        if self._timer is not None and stale is not loop:
            # Armed in a loop that has finished (an earlier asyncio.run()): it will never fire,
            # and must not stop this loop from arming its own.
            if stale is not None and not stale.is_closed():
                self._timer.cancel()
            self._timer = None
        now = loop.time()
        at = self._next_free(now)
        while at == now and self._waiting():
            self._in_flight += 1
            self._granted += 1
            self._waiters.popleft().set_result(None)
            at = self._next_free(now)
        armed = self._timer is not None and self._timer_at == at
        if at is not None and at != now and not armed and self._waiting():
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer_loop = loop
            self._timer = loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()


def _now() -> float:
    """The running loop's time, or the monotonic clock it keeps outside one."""
    loop = _running_loop()
    return loop.time() if loop is not None else time.monotonic()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _check_window(max_requests: object, period: object) -> tuple[int, float]:
    if isinstance(max_requests, bool) or not isinstance(max_requests, int):
        raise TypeError(f"max_requests must be an int, got {max_requests!r}")
    if max_requests < 1:
        raise ValueError(f"max_requests must be at least 1, got {max_requests!r}")
    if isinstance(period, bool) or not isinstance(period, int | float) or not period > 0:
        raise ValueError(f"period must be a positive number of seconds, got {period!r}")
    return max_requests, float(period)


def _keeps_within(window: tuple[int, float], budget: tuple[int, float]) -> bool:
    """Whether ``window`` (n per p seconds) never lets more than ``budget`` into its period.

    Any ``budget`` period is covered by ``ceil(period / p)`` consecutive windows of ``p``.
    """
    count, period = window
    # Rounded first: 3 / 0.3 is 10.000000000000002 in floating point, not 11 windows.
    return count * math.ceil(round(budget[1] / period, 9)) <= budget[0]


def _covers(window: tuple[int, float], limit: tuple[int, float]) -> bool:
    """Whether ``window`` alone keeps every grant from now on within ``limit``, whatever came first.

    Each grant is checked against the ``window[1]`` seconds before it; when that reaches at least
    as far back as ``limit[1]`` and allows no more requests, the last grant of any ``limit`` period
    found it within ``limit`` too.
    """
    return window[1] >= limit[1] and window[0] <= limit[0]


def _describe(limits: tuple[tuple[int, float], ...]) -> str:
    return " and ".join(f"{count} per {period:g} s" for count, period in limits)


def _finished_at(loop: asyncio.AbstractEventLoop) -> float:
    """Now on the loop's clock, as the instant a slot's cool-down starts from.

    uvloop's ``time()`` counts whole milliseconds, so it can be up to 1 ms behind the moment a
    reply arrived; a cool-down counted from there would end early and, on a fast link, let OpenD
    see one request too many in a window. On such a clock the instant is rounded up instead.
    """
    now = loop.time()
    return now if isinstance(loop, asyncio.BaseEventLoop) else now + 0.001
