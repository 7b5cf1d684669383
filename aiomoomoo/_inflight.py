"""The requests one connection has sent, by serial: waiting for a reply, or unsettled.

A request that timed out or was cancelled after it left is *unsettled*: OpenD may still process
it, so its quota slot is released only once OpenD is provably past it (it answered the request
or a later one, or the connection ended). Every waiting request's deadline is kept by one timer
set for the earliest: a request does not schedule and cancel a timer of its own, as most
replies come long before their deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._budget import NO_BUDGET, Budget, QuotaSlot
from ._errors import RequestTimeoutError

__all__ = ["InFlight", "Pending"]

_MAX_SERIAL: Final = 0xFFFFFFFE


@dataclass(slots=True)
class Pending:
    """A request on the wire: its proto id, who waits (None for KeepAlive), how to read the
    reply, its slot, its place among the requests sent, and its time."""

    proto_id: int
    future: asyncio.Future[Any] | None
    decode: Callable[[bytes], Any]
    slot: QuotaSlot
    seq: int
    budget: Budget = NO_BUDGET


class InFlight:
    """The request table of the connection to ``address``, on the running loop's clock."""

    __slots__ = ("_deadlines", "_loop", "_serial", "address", "pending", "unsettled")

    def __init__(self, address: str) -> None:
        self.address = address
        self.pending: dict[int, Pending] = {}
        self.unsettled: dict[int, Pending] = {}
        self._serial = random.randrange(1, 1 << 31)
        self._loop = asyncio.get_running_loop()
        self._deadlines: asyncio.TimerHandle | None = None

    def next_serial(self) -> int:
        """A serial no request in the table uses, counting up and wrapping."""
        serial = self._serial
        while True:
            serial = serial + 1 if serial < _MAX_SERIAL else 1
            if serial not in self.pending and serial not in self.unsettled:
                self._serial = serial
                return serial

    def add(self, serial: int, entry: Pending) -> None:
        """``entry`` waits under ``serial``; it fails with `RequestTimeoutError` at its deadline."""
        self.pending[serial] = entry
        deadline = entry.budget.deadline
        if deadline is not None:
            timer = self._deadlines
            if timer is None or deadline < timer.when():
                if timer is not None:
                    timer.cancel()
                self._deadlines = self._loop.call_at(deadline, self._expire)

    def left(self, serial: int, entry: Pending) -> None:
        """The caller stopped waiting for ``entry``: unsettled, unless its reply came."""
        if self.pending.get(serial) is entry:
            del self.pending[serial]
            self.unsettled[serial] = entry

    def settle(self, serial: int, seq: int) -> None:
        """OpenD answered the request sent ``seq``-th: release the slots of those before it."""
        late = self.unsettled.pop(serial, None)
        if late is not None:
            late.slot.release()
        for other in [s for s, e in self.unsettled.items() if e.seq < seq]:
            self.unsettled.pop(other).slot.release()

    def take_all(self) -> list[Pending]:
        """Empty the table (the connection ended): every entry, the waiting ones first."""
        if self._deadlines is not None:
            self._deadlines.cancel()
            self._deadlines = None
        entries = [*self.pending.values(), *self.unsettled.values()]
        self.pending.clear()
        self.unsettled.clear()
        return entries

    def _expire(self) -> None:
        """Fail every request past its deadline; set the timer for the earliest one left."""
        self._deadlines = None
        now = self._loop.time()
        earliest: float | None = None
        for serial, entry in self.pending.items():
            future, deadline = entry.future, entry.budget.deadline
            if future is None or deadline is None or future.done():
                continue
            if deadline <= now:
                future.set_exception(
                    RequestTimeoutError(
                        f"OpenD at {self.address} did not answer proto {entry.proto_id} "
                        f"(serial {serial}) within {entry.budget}"
                    )
                )
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._deadlines = self._loop.call_at(earliest, self._expire)
