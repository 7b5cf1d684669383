"""What ``Client(rate_limit=...)`` may be, and the `Limiter` the session asks for each request.

The session asks every limiter one thing: ``await limiter.grant()`` before a request goes, which
returns the request's `aiomoomoo._budget.QuotaSlot`; the connection then ``release()``s it once
OpenD is past the request, or the session ``give_back()``s one that was never sent. A
`SlidingWindowLimiter` grants its own slots; ``None`` becomes a limiter that never waits, and a
user's own limiter (``aiolimiter.AsyncLimiter``, or anything with an async ``acquire()``) is
wrapped so that only its ``acquire()`` is called: neither counts slots, so theirs do nothing.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol, runtime_checkable

from ._budget import NO_SLOT, QuotaSlot, SlotContext
from ._quota import SlidingWindowLimiter

__all__ = [
    "Limiter",
    "RateLimit",
    "RequestLimiter",
    "adapt_rate_limit",
    "adopt_server_budget",
    "first_refusal_pause",
    "grants_at_once",
    "unwrap_rate_limit",
]


@runtime_checkable
class RequestLimiter(Protocol):
    """Anything with an async ``acquire()`` that returns when one request may go.

    ``aiolimiter.AsyncLimiter`` is one; so is `SlidingWindowLimiter`.
    """

    async def acquire(self) -> None: ...


_FREE_SLOT: Final = SlotContext(None, None)


class _NoLimit:
    """The ``rate_limit=None`` case: every request goes at once."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no rate limit>"

    def slot(self) -> AbstractAsyncContextManager[None]:
        return _FREE_SLOT

    async def grant(self) -> QuotaSlot:
        """A slot at once: nothing to count."""
        return NO_SLOT


class _Acquiring:
    """Wraps a user's limiter (aiolimiter's, or any ``acquire()``) into the ``slot()`` shape."""

    __slots__ = ("_slot", "limiter")

    def __init__(self, limiter: RequestLimiter) -> None:
        self.limiter = limiter
        self._slot = SlotContext(limiter.acquire, None)

    def __repr__(self) -> str:
        return repr(self.limiter)

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._slot

    async def grant(self) -> QuotaSlot:
        """Wait for the wrapped limiter's ``acquire()``, which counts the request from now: the
        slot has nothing left to release, and an unsent request's cannot be given back."""
        await self.limiter.acquire()
        return NO_SLOT


Limiter = SlidingWindowLimiter | _NoLimit | _Acquiring
"""What the session spends a request's quota through: each ``grant()``s a `QuotaSlot`."""

RateLimit = tuple[int, float] | SlidingWindowLimiter | RequestLimiter | None
"""What ``Client(rate_limit=...)`` takes: ``(max_requests, period_seconds)``, a shared limiter, or
None for no client-side limit."""


def grants_at_once(limiter: Limiter) -> bool:
    """Whether ``limiter`` never makes a request wait (``rate_limit=None``): nothing to time."""
    return isinstance(limiter, _NoLimit)


def unwrap_rate_limit(limiter: Limiter) -> SlidingWindowLimiter | RequestLimiter | None:
    """The user-facing limiter behind ``limiter`` (None for no limit)."""
    if isinstance(limiter, _Acquiring):
        return limiter.limiter
    if isinstance(limiter, _NoLimit):
        return None
    return limiter


def adapt_rate_limit(rate_limit: object) -> Limiter:
    """Turn the ``rate_limit=`` argument of `aiomoomoo.Client` into the session's `Limiter`.

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


def adopt_server_budget(limiter: Limiter, budget: tuple[int, float] | None) -> bool:
    """Tighten a client's limiter to the budget OpenD stated in a refusal, if it overruns it.

    ``budget`` is `aiomoomoo.RateLimitError.quota`. Only a `SlidingWindowLimiter` learns (see
    `SlidingWindowLimiter.tighten`); a user's own limiter and ``rate_limit=None`` are left as
    configured. True if the limiter changed.
    """
    if budget is None or not isinstance(limiter, SlidingWindowLimiter):
        return False
    return limiter.tighten(*budget)


def first_refusal_pause(limiter: Limiter) -> float:
    """The first pause after OpenD answers "rate limit": one slot's share of ``limiter``'s period.

    A wrapped limiter is looked into (aiolimiter names its budget ``max_rate``/``time_period``);
    without a budget to read, OpenD's own 30 per 30 s is assumed.
    """
    inner = getattr(limiter, "limiter", limiter)
    period = getattr(inner, "period", None) or getattr(inner, "time_period", None)
    count = getattr(inner, "max_requests", None) or getattr(inner, "max_rate", None)
    try:
        return max(float(period or 30.0) / float(count or 30), 0.01)
    except (TypeError, ValueError, ZeroDivisionError):
        return 1.0
