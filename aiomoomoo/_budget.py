"""One request's time and quota slot, as the session hands them to the connection."""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["NO_BUDGET", "NO_SLOT", "Budget", "QuotaSlot"]


class QuotaSlot(Protocol):
    """A granted quota slot: released when OpenD is past the request, or given back unused."""

    def _release(self) -> None: ...
    def _give_back(self) -> None: ...


class _NoSlot:
    def _release(self) -> None:
        return None

    def _give_back(self) -> None:
        return None


NO_SLOT: Final = _NoSlot()


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
