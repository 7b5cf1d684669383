"""A simulator and an :class:`aiomoomoo.Client` on it, for the client and connection tests.

Plain async context managers rather than fixtures: almost every test wants its own quota,
faults or client options, and says so where it opens them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pandas as pd

from aiomoomoo import Client, ShortInterestPage
from aiomoomoo.testing import Faults, OpenDSimulator, Quota

#: Generous: replies take milliseconds, this only keeps a broken test from hanging.
TIMEOUT = 5.0


@contextlib.asynccontextmanager
async def serving(
    *, quota: Quota | None = None, faults: Faults | None = None, **options: Any
) -> AsyncIterator[OpenDSimulator]:
    """A started simulator, without a quota unless one is given."""
    async with OpenDSimulator(quota=quota, faults=faults, **options) as simulator:
        yield simulator


@contextlib.asynccontextmanager
async def client_of(simulator: OpenDSimulator, **options: Any) -> AsyncIterator[Client]:
    """A connected client; no client-side quota and quick reconnects unless told otherwise.

    The first connection is made with the simulator's faults switched off (a reply delay
    would hold InitConnect up too); they apply again from the first request on.
    """
    options.setdefault("rate_limit", None)
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    client = Client(simulator.host, simulator.port, **options)
    faults, simulator.faults = simulator.faults, Faults()
    try:
        await client.connect()
    finally:
        simulator.faults = faults
    async with client:
        yield client


def dates(pages: Sequence[ShortInterestPage]) -> list[str]:
    """The ``timestamp_str`` of every row of ``pages``, in order."""
    return [str(day) for page in pages for day in page.frame["timestamp_str"]]


def history_dates(simulator: OpenDSimulator, code: str) -> list[str]:
    """What a complete walk of ``code`` must return, newest first."""
    return [str(row.timestamp_str) for row in simulator.history(code)]


def frame_dates(frame: pd.DataFrame) -> list[str]:
    return [str(day) for day in frame["timestamp_str"]]


def busiest_window(times: list[float], period: float) -> int:
    """The most accepted requests inside any half-open window of ``period`` seconds."""
    times = sorted(times)
    return max((sum(1 for t in times if s <= t < s + period) for s in times), default=0)


def assert_strict_quota_kept(
    simulator: OpenDSimulator, requests: int, elapsed: float, max_requests: int, period: float
) -> None:
    """``requests`` all served, none refused, the strict window full but never over, on time.

    The lower time bound is the property (never faster than the strict window allows). The
    upper bound only catches a scheduler that wastes whole windows (a leaky bucket takes +50 %):
    how close to the optimum it gets is measured by ``nox -s bench``, since a loaded
    CI machine delays the event loop by more than any fine margin here.
    """
    assert simulator.stats.rate_limited == 0
    assert len(simulator.stats.accepted_at) == requests
    assert busiest_window(simulator.stats.accepted_at, period) == max_requests
    ideal = period * (math.ceil(requests / max_requests) - 1)
    assert ideal <= elapsed <= ideal * 1.25, f"{requests} requests took {elapsed:.3f} s"
