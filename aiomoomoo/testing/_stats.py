"""The simulator's quota (a strict sliding window, as OpenD keeps it) and what it counts."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Final

__all__ = ["ACCEPTED_AT_KEPT", "DEFAULT_QUOTA", "Quota", "QuotaWindow", "SimulatorStats"]


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``max_requests`` short-interest requests in any ``period`` seconds."""

    max_requests: int = 30
    period: float = 30.0

    def __post_init__(self) -> None:
        # A NaN or infinite period would never let a request leave the window.
        if self.max_requests < 1 or not 0 < self.period < math.inf:
            raise ValueError(
                f"quota needs max_requests >= 1 and a finite period > 0, got "
                f"{self.max_requests} requests per {self.period} seconds"
            )

    @classmethod
    def parse(cls, text: str) -> Quota:
        """Parse ``"N/SECONDS"``, as the command line takes it (``"30/30"``)."""
        count, slash, seconds = text.partition("/")
        try:
            if not slash:
                raise ValueError
            max_requests, period = int(count), float(seconds)
        except ValueError:
            raise ValueError(f"quota {text!r} is not N/SECONDS, for example 30/30") from None
        return cls(max_requests, period)


#: OpenD's short-interest quota: 30 requests in any 30 seconds.
DEFAULT_QUOTA: Final = Quota()


#: How many of the latest accept times `SimulatorStats.accepted_at` keeps.
ACCEPTED_AT_KEPT: Final = 10_000


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has seen: counters, and the clock times of the latest served 3249s.

    ``accepted_at`` keeps the last `ACCEPTED_AT_KEPT` (10,000) times, oldest first, so a
    simulator that serves for days does not grow; ``accepted`` counts them all.
    """

    connections: int = 0
    requests: int = 0
    accepted: int = 0
    rate_limited: int = 0
    failed: int = 0
    keepalives: int = 0
    pushes: int = 0
    dropped: int = 0
    refused_connections: int = 0
    accepted_at: list[float] = field(default_factory=list)

    def accept(self, now: float) -> None:
        """Count a short-interest request served at ``now``."""
        self.accepted += 1
        times = self.accepted_at
        times.append(now)
        if len(times) > ACCEPTED_AT_KEPT:
            del times[0]


class QuotaWindow:
    """The times of the requests inside the current window: all a strict quota needs."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def admits(self, quota: Quota | None, now: float) -> bool:
        """Whether one more request at ``now`` keeps within ``quota`` (without counting it)."""
        if quota is None:
            return True
        times = self._times
        while times and times[0] <= now - quota.period:
            times.popleft()
        return len(times) < quota.max_requests

    def record(self, now: float) -> None:
        """Count a request admitted at ``now``."""
        self._times.append(now)
