"""A request's timeout is one deadline: the write, the wait for a reconnect and the reply share
it, a timed-out request is never resent, and its quota slot stays taken until the gateway is
past it, so the gateway never sees more than the quota in a window.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from aiomoomoo import RequestTimeoutError

from ._fixtures import busiest_window
from ._hostile import GUARD, Fault, Request, client_for, first_only, hostile

pytestmark = pytest.mark.anyio


async def test_the_timeout_is_one_deadline_for_the_write_and_the_reply() -> None:
    # Before: 0.5 s waiting for the socket to take the write, then a fresh 0.5 s for the reply.
    async with (
        hostile(script=lambda r: "silent") as gateway,
        client_for(gateway, timeout=0.5) as client,
    ):
        connection = client._connection
        assert connection is not None
        connection.pause_writing()
        asyncio.get_running_loop().call_later(0.4, connection.resume_writing)
        start = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await client.get_short_interest("US.AAPL")
        assert time.monotonic() - start < 0.85


async def test_the_timeout_covers_waiting_for_a_reconnect() -> None:
    # Before: a request waited for every reconnect attempt (here 5 pauses of 1 s) first.
    async with hostile() as gateway:
        client = client_for(gateway, timeout=0.3, retries=5, reconnect_delay=(1.0, 1.0))
        await client.connect()
    start = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="no connection to OpenD"):
        await client.get_short_interest("US.AAPL")
    assert time.monotonic() - start < 0.9
    await client.close()


async def test_a_timed_out_request_is_not_resent() -> None:
    async with (
        hostile(script=first_only("silent")) as gateway,
        client_for(gateway, timeout=0.2) as client,
    ):
        with pytest.raises(RequestTimeoutError):
            await client.get_short_interest("US.AAPL")
        await asyncio.sleep(0.3)
        assert len(gateway.requests) == 1
        assert len(await client.get_short_interest("US.AAPL")) == 10
    assert gateway.connections == 1


async def test_timed_out_requests_keep_their_slots_until_the_gateway_is_past_them() -> None:
    # Before: slots were freed a period after each timeout, so a gateway that stalled past the
    # period processed both batches (10) inside one window.
    def script(request: Request) -> Fault:
        return "stall" if request.overall == 1 else "reply"

    period = 0.3
    async with (
        hostile(script=script, stall=0.5) as gateway,
        client_for(gateway, rate_limit=(5, period), timeout=0.1) as client,
    ):
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(
                *(client.get_short_interest("US.AAPL") for _ in range(10)),
                return_exceptions=True,
            )
    assert sum(isinstance(r, RequestTimeoutError) for r in results) >= 5
    assert len(gateway.processed_at) == 10
    assert busiest_window(gateway.processed_at, period) <= 5
