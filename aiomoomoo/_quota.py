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
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "RateLimit",
    "RequestLimiter",
    "SlidingWindowLimiter",
    "adapt_rate_limit",
    "unwrap_rate_limit",
]


@runtime_checkable
class RequestLimiter(Protocol):
    """Anything with an async ``acquire()`` that returns when one request may go.

    ``aiolimiter.AsyncLimiter`` is one; so is `SlidingWindowLimiter`.
    """

    async def acquire(self) -> None: ...


class SlidingWindowLimiter:
    """At most ``max_requests`` requests in any ``period`` seconds, exactly, shared by all tasks.

    Use one instance per OpenD account: pass it as ``rate_limit=`` to every
    `aiomoomoo.Client` that shares the account's quota. Clients use `slot`, which
    knows when the reply came; `acquire` is for other code that wants the same budget and
    counts from the grant.
    """

    __slots__ = (
        "_done",
        "_in_flight",
        "_slot",
        "_timer",
        "_timer_at",
        "_waiters",
        "max_requests",
        "period",
    )

    def __init__(self, max_requests: int = 30, period: float = 30.0) -> None:
        if isinstance(max_requests, bool) or not isinstance(max_requests, int):
            raise TypeError(f"max_requests must be an int, got {max_requests!r}")
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests!r}")
        if isinstance(period, bool) or not isinstance(period, int | float) or not period > 0:
            raise ValueError(f"period must be a positive number of seconds, got {period!r}")
        self.max_requests = max_requests
        self.period = float(period)
        self._in_flight = 0
        # Completion times, appended as requests finish, so they are already in order.
        self._done: collections.deque[float] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # Stateless, so one serves every request.
        self._slot = _Slot(self._acquire, self._release)

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowLimiter {self.max_requests}/{self.period:g}s "
            f"in_flight={self._in_flight} recent={len(self._done)} "
            f"waiting={sum(not w.done() for w in self._waiters)}>"
        )

    def has_capacity(self) -> bool:
        """Whether a request could be granted right now without waiting."""
        self._expire(asyncio.get_running_loop().time())
        return not self._waiting() and self._used() < self.max_requests

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a slot, run the body (send and await the reply), then start its cool-down."""
        return self._slot

    def _release(self) -> None:
        self._in_flight -= 1
        self._done.append(_finished_at(asyncio.get_running_loop()))
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

    # -- internals --------------------------------------------------------------------------

    def _used(self) -> int:
        return self._in_flight + len(self._done)

    def _waiting(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    def _expire(self, now: float) -> None:
        done, period = self._done, self.period
        while done and done[0] + period <= now:
            done.popleft()

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        self._expire(loop.time())
        if not self._waiting() and self._used() < self.max_requests:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted, then cancelled before the request could use it: nothing was sent.
                self._in_flight -= 1
                self._wake()
            raise

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        self._expire(loop.time())
        while self._waiting() and self._used() < self.max_requests:
            self._in_flight += 1
            self._waiters.popleft().set_result(None)
        if self._waiting() and self._done:
            at = self._done[0] + self.period
            if self._timer is None or self._timer_at != at:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = at
                self._timer = loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()


def _finished_at(loop: asyncio.AbstractEventLoop) -> float:
    """Now on the loop's clock, as the instant a slot's cool-down starts from.

    uvloop's ``time()`` counts whole milliseconds, so it can be up to 1 ms behind the moment a
    reply arrived; a cool-down counted from there would end early and, on a fast link, let OpenD
    see one request too many in a window. On such a clock the instant is rounded up instead.
    """
    now = loop.time()
    return now if isinstance(loop, asyncio.BaseEventLoop) else now + 0.001


class _Slot:
    """``async with quota.slot():`` without a generator-based context manager per request."""

    __slots__ = ("_acquire", "_release")

    def __init__(
        self, acquire: Callable[[], Awaitable[None]] | None, release: Callable[[], None] | None
    ) -> None:
        self._acquire = acquire
        self._release = release

    async def __aenter__(self) -> None:
        if self._acquire is not None:
            await self._acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._release is not None:
            self._release()


_FREE_SLOT: Final = _Slot(None, None)


class _NoLimit:
    """The ``rate_limit=None`` case: every request goes at once."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no rate limit>"

    def slot(self) -> AbstractAsyncContextManager[None]:
        return _FREE_SLOT


class _Acquiring:
    """Wraps a user's limiter (aiolimiter's, or any ``acquire()``) into the ``slot()`` shape."""

    __slots__ = ("_slot", "limiter")

    def __init__(self, limiter: RequestLimiter) -> None:
        self.limiter = limiter
        self._slot = _Slot(limiter.acquire, None)

    def __repr__(self) -> str:
        return repr(self.limiter)

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._slot


Quota = SlidingWindowLimiter | _NoLimit | _Acquiring

RateLimit = tuple[int, float] | SlidingWindowLimiter | RequestLimiter | None
"""What ``Client(rate_limit=...)`` takes: ``(max_requests, period_seconds)``, a shared limiter, or
None for no client-side limit."""


def unwrap_rate_limit(quota: Quota) -> SlidingWindowLimiter | RequestLimiter | None:
    """The user-facing limiter behind a quota object (None for no limit)."""
    if isinstance(quota, _Acquiring):
        return quota.limiter
    if isinstance(quota, _NoLimit):
        return None
    return quota


def adapt_rate_limit(rate_limit: object) -> Quota:
    """Turn the ``rate_limit=`` argument of `aiomoomoo.Client` into a quota object.

    ``(max_requests, period_seconds)`` builds a private `SlidingWindowLimiter`; ``None``
    means no client-side limit; a `SlidingWindowLimiter` or any object with an async
    ``acquire()`` (such as ``aiolimiter.AsyncLimiter``) is shared as it is.
    """
    if rate_limit is None:
        return _NoLimit()
    if isinstance(rate_limit, SlidingWindowLimiter):
        return rate_limit
    if isinstance(rate_limit, tuple):
        if len(rate_limit) != 2:
            raise ValueError(
                f"rate_limit tuple must be (max_requests, period_seconds), got {rate_limit!r}"
            )
        return SlidingWindowLimiter(*rate_limit)
    if isinstance(rate_limit, RequestLimiter):
        # A semaphore or lock also has acquire(), but its slots come back only through
        # release(), which nothing here would call: every request past its count would hang.
        if hasattr(rate_limit, "release") or not inspect.iscoroutinefunction(rate_limit.acquire):
            raise TypeError(
                f"rate_limit {rate_limit!r} has no async acquire() that spends one request, or "
                "needs release() as a semaphore or lock does; pass a SlidingWindowLimiter, an "
                "aiolimiter.AsyncLimiter, (max_requests, period_seconds) or None"
            )
        return _Acquiring(rate_limit)
    raise TypeError(
        "rate_limit must be (max_requests, period_seconds), None, a SlidingWindowLimiter or "
        f"an object with an async acquire() such as aiolimiter.AsyncLimiter; got {rate_limit!r}"
    )
