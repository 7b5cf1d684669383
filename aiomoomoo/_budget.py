"""One request's time and quota slot, as the session hands them to the connection.

A `QuotaSlot` is what a request holds of its limiter from the grant until OpenD is past it;
`SlotContext` is the ``async with limiter.slot():`` shape of the same for code without replies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol

__all__ = ["NO_BUDGET", "NO_SLOT", "Budget", "GrantedSlot", "QuotaSlot", "SlotContext"]


class QuotaSlot(Protocol):
    """A quota slot granted to one request, which owns it until one of these ends it.

    The connection calls `release` once OpenD is past the request (it answered it, or a later
    one, or the connection ended): the slot's cool-down counts from then. `give_back` returns a
    slot whose request was never sent, as if it had never been granted.
    """

    def release(self) -> None: ...
    def give_back(self) -> None: ...


class GrantedSlot:
    """A `QuotaSlot` whose two ends are its limiter's own bookkeeping.

    A limiter counts its slots itself, so one of these, made once, serves all its requests.
    """

    __slots__ = ("give_back", "release")

    def __init__(self, release: Callable[[], None], give_back: Callable[[], None]) -> None:
        self.release = release
        self.give_back = give_back


def _nothing() -> None:
    return None


NO_SLOT: Final = GrantedSlot(_nothing, _nothing)
"""The slot of a request no limiter counts (KeepAlive, InitConnect, ``rate_limit=None``)."""


class SlotContext:
    """What ``limiter.slot()`` returns: ``async with`` it awaits ``acquire`` and calls
    ``release`` on the way out, without a generator-based context manager per request."""

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


class Budget:
    """One request's time, asyncpg style: a single deadline for everything the request waits for.

    Writes, reconnects and the reply all spend it; `extend` pushes the deadline back by time
    the caller chose not to count (the wait for the client's own quota).
    """

    __slots__ = ("deadline", "timeout")

    def __init__(self, timeout: float | None, now: float) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else now + timeout

    def extend(self, seconds: float) -> None:
        if self.deadline is not None:
            self.deadline += seconds

    def __str__(self) -> str:
        return f"{self.timeout:g} s" if self.timeout is not None else "no time limit"


NO_BUDGET: Final = Budget(None, 0.0)
