"""What ``Client(rate_limit=...)`` may be, and the quota object the session spends for each.

The session asks every quota the same three things: ``_grant`` a slot before a request goes,
``_release`` it once OpenD is past the request, or ``_give_back`` one that was never sent. A
`SlidingWindowLimiter` answers them itself; ``None`` becomes a quota that never waits, and a
user's own limiter (``aiolimiter.AsyncLimiter``, or anything with an async ``acquire()``) is
wrapped so that only its ``acquire()`` is called.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol, runtime_checkable

from ._quota import SlidingWindowLimiter, _Slot

__all__ = [
    "Quota",
    "RateLimit",
    "RequestLimiter",
    "adapt_rate_limit",
    "adopt_server_budget",
    "grants_at_once",
    "unwrap_rate_limit",
]


@runtime_checkable
class RequestLimiter(Protocol):
    """Anything with an async ``acquire()`` that returns when one request may go.

    ``aiolimiter.AsyncLimiter`` is one; so is `SlidingWindowLimiter`.
    """

    async def acquire(self) -> None: ...


_FREE_SLOT: Final = _Slot(None, None)


class _NoLimit:
    """The ``rate_limit=None`` case: every request goes at once."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no rate limit>"

    def slot(self) -> AbstractAsyncContextManager[None]:
        return _FREE_SLOT

    async def _grant(self) -> None:
        return None

    def _release(self) -> None:
        return None

    def _give_back(self) -> None:
        return None


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

    async def _grant(self) -> None:
        await self.limiter.acquire()

    def _release(self) -> None:
        return None  # the wrapped limiter counts from acquire()

    def _give_back(self) -> None:
        return None


Quota = SlidingWindowLimiter | _NoLimit | _Acquiring

RateLimit = tuple[int, float] | SlidingWindowLimiter | RequestLimiter | None
"""What ``Client(rate_limit=...)`` takes: ``(max_requests, period_seconds)``, a shared limiter, or
None for no client-side limit."""


def grants_at_once(quota: Quota) -> bool:
    """Whether ``quota`` never makes a request wait (``rate_limit=None``): nothing to time."""
    return isinstance(quota, _NoLimit)


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


def adopt_server_budget(quota: Quota, budget: tuple[int, float] | None) -> bool:
    """Tighten a client's limiter to the budget OpenD stated in a refusal, if it overruns it.

    ``budget`` is `aiomoomoo.RateLimitError.quota`. Only a `SlidingWindowLimiter` learns (see
    `SlidingWindowLimiter.tighten`); a user's own limiter and ``rate_limit=None`` are left as
    configured. True if the limiter changed.
    """
    if budget is None or not isinstance(quota, SlidingWindowLimiter):
        return False
    return quota.tighten(*budget)
