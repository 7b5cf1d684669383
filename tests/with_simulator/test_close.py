"""``close()`` ends every request at once, wherever it waits (for a quota slot, for a
reconnect), a shared limiter forgets a closed client's waiters, and cancelling ``close()`` reaches
its caller.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from aiomoomoo import Client, ClientClosedError, SlidingWindowLimiter

from ._fixtures import serving
from ._hostile import GUARD, client_for, hostile

pytestmark = pytest.mark.anyio


async def test_close_fails_requests_queued_for_quota_at_once() -> None:
    # Before: each queued request learned it was closed only when it got a slot, one slot per
    # period (here 19 s for 38 of them; 300 under the default quota took 4.5 minutes).
    async with hostile() as gateway:
        client = client_for(gateway, rate_limit=(2, 1.0))
        await client.connect()
        tasks = [asyncio.create_task(client.get_short_interest("US.AAPL")) for _ in range(40)]
        await asyncio.sleep(0.2)
        assert sum(t.done() for t in tasks) == 2
        start = time.monotonic()
        await client.close()
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(*tasks, return_exceptions=True)
        closed_in = time.monotonic() - start
    assert all(isinstance(r, ClientClosedError) for r in results[2:]), results
    assert closed_in < 2.0  # before: 19 s


async def test_a_closed_clients_queued_requests_leave_a_shared_limiter() -> None:
    # Before: the closed client's dead waiters took 10 slots (5 periods) ahead of the live one.
    shared = SlidingWindowLimiter(2, 0.3)
    async with hostile() as gateway:
        dead = client_for(gateway, rate_limit=shared)
        live = client_for(gateway, rate_limit=shared)
        await dead.connect()
        await live.connect()
        queued = [asyncio.create_task(dead.get_short_interest("US.AAPL")) for _ in range(12)]
        await asyncio.sleep(0.05)
        await dead.close()
        start = time.monotonic()
        pages = await asyncio.gather(*(live.get_short_interest("HK.00700") for _ in range(4)))
        took = time.monotonic() - start
        await live.close()
        await asyncio.gather(*queued, return_exceptions=True)
    assert [len(p) for p in pages] == [10] * 4
    # The first two slots free up one period after the dead client's two sent requests.
    assert took < 1.5, f"the live client waited {took:.2f} s"  # before: behind 10 dead requests
    assert "waiting=0" in repr(shared)


async def test_close_fails_a_request_waiting_for_a_reconnect_at_once() -> None:
    async with hostile() as gateway:
        client = client_for(gateway, reconnect_delay=(5.0, 5.0), retries=5, timeout=None)
        await client.connect()
        gateway.drop_all()
        await asyncio.sleep(0.05)
        task = asyncio.create_task(client.get_short_interest("US.AAPL"))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await client.close()
        with pytest.raises(ClientClosedError, match="was closed while the request waited"):
            await task
        assert time.monotonic() - start < 1.0


async def test_cancelling_close_reaches_its_caller() -> None:
    async with serving() as sim:
        client = Client(sim.host, sim.port, reconnect_delay=(5.0, 5.0), retries=5)
        await client.connect()
        await sim.close()  # the link drops and the client starts reconnecting, slowly
        await asyncio.sleep(0.05)
        assert client._reconnector is not None
        closing = asyncio.ensure_future(client.close())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert closing.cancelled()
        await client.close()
