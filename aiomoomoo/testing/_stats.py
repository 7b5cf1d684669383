"""The simulator's quota (a strict sliding window, as OpenD keeps it), its limits on what a
client may take, and what it counts."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ACCEPTED_AT_KEPT",
    "DEFAULT_LIMITS",
    "DEFAULT_QUOTA",
    "Limits",
    "Quota",
    "QuotaWindow",
    "SimulatorStats",
]


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


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client, or all of them, may cost the simulator; None turns a limit off.

    ``max_connections`` open at once (more are closed as they arrive), ``handshake_timeout``
    seconds for a new connection to send InitConnect, ``idle_timeout`` seconds without a complete
    request before a connection is closed, ``max_request_size`` bytes of one request body (a
    frame announcing more is refused as soon as its header arrives, before the body is
    buffered) and ``max_pending`` bytes of replies waiting for a client that does not read
    before its requests stop being read.
    """

    max_connections: int | None = 64
    handshake_timeout: float | None = 10.0
    idle_timeout: float | None = 120.0
    max_request_size: int = 64 * 1024
    max_pending: int = 256 * 1024

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_request_size", "max_pending"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"Limits.{name} must be a whole number >= 1, got {value!r}")
        for name in ("handshake_timeout", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ValueError(f"Limits.{name} must be None or seconds > 0, got {value!r}")


#: The limits a simulator has unless told otherwise.
DEFAULT_LIMITS: Final = Limits()

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
