"""Testing your code against an OpenD that misbehaves, with the simulator's Faults.

This file is both a pytest module and a script; copy the pattern into your bot's tests. Either
way it needs pytest beside aiomoomoo (``pip install pytest``; from a checkout of aiomoomoo, whose
pytest settings set a timeout, ``pip install pytest pytest-timeout``):

    pytest examples/testing_with_faults.py
    python examples/testing_with_faults.py

Each test starts its own simulator (``port=0`` picks a free port) with the faults it needs, points
an ``aiomoomoo.Client`` at it and checks the outcome against ``simulator.history(code)``, the
exact rows the simulator serves. Faults only exist in the simulator, so there is no --host/--port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pandas as pd

try:
    import pytest
except ModuleNotFoundError:
    raise SystemExit(
        "examples/testing_with_faults.py is a pytest module and needs pytest: pip install pytest"
    ) from None

import aiomoomoo
from aiomoomoo.testing import Faults, HkRow, OpenDSimulator, Quota, UsRow

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Run the tests on asyncio only (anyio would also try trio): aiomoomoo is asyncio-based."""
    return "asyncio"


# Reconnect at once in tests: the default first pause is 0.1 s, doubling up to 5 s.
FAST_RECONNECT = (0.01, 0.05)


async def load_history(client: aiomoomoo.Client, code: str) -> pd.DataFrame:
    """The code under test: what a bot might do at start-up."""
    return await client.fetch_short_interest(code)


def timestamps(rows: Sequence[UsRow] | Sequence[HkRow]) -> list[int | None]:
    """The timestamps of simulator rows, to compare with a frame's ``timestamp`` column."""
    return [row.timestamp for row in rows]


async def test_history_survives_dropped_connections() -> None:
    # Every connection serves 3 requests, then drops when the 4th arrives: a 380-row history in
    # pages of 50 needs 8 requests, so the walk loses its connection twice and resumes each time
    # from the same next_key.
    async with OpenDSimulator(port=0, faults=Faults(drop_after=3)) as sim:
        async with aiomoomoo.Client(sim.host, sim.port, reconnect_delay=FAST_RECONNECT) as client:
            frame = await load_history(client, "HK.00700")
            assert client.reconnects == sim.stats.dropped == 2
        assert frame["timestamp"].tolist() == timestamps(sim.history("HK.00700"))


async def test_gives_up_after_retries() -> None:
    # drop_after=0: every request kills its connection. A read is sent 1 + retries times.
    async with OpenDSimulator(port=0, faults=Faults(drop_after=0)) as sim:
        async with aiomoomoo.Client(
            sim.host, sim.port, retries=2, reconnect_delay=FAST_RECONNECT
        ) as client:
            with pytest.raises(aiomoomoo.ConnectionLostError):
                await client.get_short_interest("US.AAPL")
        assert sim.stats.dropped == 3


async def test_slow_split_and_reordered_replies() -> None:
    # Replies come late (by up to 50 ms each), newest first, in writes of 5 bytes.
    faults = Faults(reply_jitter=0.05, reorder_window=0.02, split_writes=5)
    codes = ["US.AAPL", "US.TSLA", "HK.00700", "HK.09988"]
    async with OpenDSimulator(port=0, faults=faults) as sim:
        async with aiomoomoo.Client(sim.host, sim.port) as client:
            pages = await asyncio.gather(*(client.get_short_interest(c, num=3) for c in codes))
        for code, page in zip(codes, pages, strict=True):
            assert page.code == code
            assert page.frame["timestamp"].tolist() == timestamps(sim.history(code)[:3])


async def test_slow_gateway_times_out_then_recovers() -> None:
    async with OpenDSimulator(port=0) as sim, aiomoomoo.Client(sim.host, sim.port) as client:
        # Faults apply to every reply from the next frame on, InitConnect's included, so slow
        # the gateway down only once connected.
        sim.faults.reply_delay = 1.0
        with pytest.raises(aiomoomoo.RequestTimeoutError):
            await client.get_short_interest("US.AAPL", timeout=0.1)
        # The connection is still good; the late reply to the request that timed out will be
        # discarded when it comes.
        sim.faults.reply_delay = 0.0
        page = await client.get_short_interest("US.AAPL", timeout=0.1)
        assert len(page) == 10


async def test_gateway_events_reach_on_event() -> None:
    events: list[aiomoomoo.GatewayEvent] = []
    async with (
        OpenDSimulator(port=0, faults=Faults(push_every=1)) as sim,
        aiomoomoo.Client(sim.host, sim.port, on_event=events.append) as client,
    ):
        for _ in range(3):
            await client.get_short_interest("HK.00700", num=1)
    assert [event.type_name for event in events] == ["GtwEvent"] * 3


async def test_silent_gateway_is_detected() -> None:
    # OpenD that stops answering KeepAlives looks dead: the client gives the link up after 3.3
    # keep-alive intervals of silence and reconnects. keepalive_interval=0.1 makes that 0.33 s.
    async with (
        OpenDSimulator(port=0, faults=Faults(answer_keepalive=False)) as sim,
        aiomoomoo.Client(
            sim.host, sim.port, keepalive_interval=0.1, reconnect_delay=FAST_RECONNECT
        ) as client,
    ):
        await asyncio.sleep(1.0)
        assert client.reconnects >= 1
        sim.faults.answer_keepalive = True
        assert len(await client.get_short_interest("US.AAPL", num=1)) == 1


async def test_client_quota_matches_the_gateway() -> None:
    # 9 requests against a quota of 3 per 0.3 s: the client spaces them so the gateway refuses
    # none, in the least time possible, 0.3 * (ceil(9 / 3) - 1) = 0.6 s.
    async with (
        OpenDSimulator(port=0, quota=Quota(3, 0.3)) as sim,
        aiomoomoo.Client(sim.host, sim.port, rate_limit=(3, 0.3)) as client,
    ):
        started = time.monotonic()
        await asyncio.gather(*(client.get_short_interest("US.AAPL") for _ in range(9)))
        elapsed = time.monotonic() - started
    assert sim.stats.rate_limited == 0
    assert 0.6 <= elapsed < 1.5


TESTS: list[Callable[[], Awaitable[None]]] = [
    test_history_survives_dropped_connections,
    test_gives_up_after_retries,
    test_slow_split_and_reordered_replies,
    test_slow_gateway_times_out_then_recovers,
    test_gateway_events_reach_on_event,
    test_silent_gateway_is_detected,
    test_client_quota_matches_the_gateway,
]


async def run_all() -> None:
    for test in TESTS:
        started = time.monotonic()
        await test()
        print(f"PASS {test.__name__} ({time.monotonic() - started:.2f} s)")


if __name__ == "__main__":
    asyncio.run(run_all())
    print(f"all {len(TESTS)} passed")
