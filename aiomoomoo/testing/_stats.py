"""The simulator's quota (a strict sliding window, as OpenD keeps it) and what it counts."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_QUOTA", "Quota", "QuotaWindow", "SimulatorStats"]


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


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has seen; ``accepted_at`` holds the clock time of every served 3249."""

    connections: int = 0
    requests: int = 0
    rate_limited: int = 0
    failed: int = 0
    keepalives: int = 0
    pushes: int = 0
    dropped: int = 0
    accepted_at: list[float] = field(default_factory=list)


class QuotaWindow:
    """The times of the requests inside the current window: all a strict quota needs."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def admit(self, quota: Quota | None, now: float) -> bool:
        """Count one request arriving at ``now``; False (and not counted) if over ``quota``."""
        if quota is None:
            return True
        times = self._times
        while times and times[0] <= now - quota.period:
            times.popleft()
        if len(times) >= quota.max_requests:
            return False
        times.append(now)
        return True
