"""Reconnects and resends against a gateway that drops connections.

No reconnect storm and bounded failure when a gateway hangs up or never serves; a resend is
charged to the request that caused the drop, so a poisonous symbol fails alone and every healthy
walk completes, paced or not; after a drop, the new connection's first request (carried alone
until replies come) holds no one else back, whether it stalls, times out or is never answered.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiomoomoo import (
    Client,
    ConnectError,
    ConnectionLostError,
    FetchManyError,
    RequestTimeoutError,
    SlidingWindowLimiter,
)

from ._fixtures import frame_dates
from ._hostile import GUARD, Fault, Request, client_for, dates_of, hostile, until

pytestmark = pytest.mark.anyio


# -- no storm, bounded failure ---------------------------------------------------------------------


async def test_a_gateway_that_hangs_up_after_init_connect_is_not_stormed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Before: about 2,000 reconnects a second, each logging a WARNING.
    caplog.set_level(logging.INFO, logger="aiomoomoo")
    async with hostile() as gateway:
        client = client_for(gateway, reconnect_delay=(0.05, 0.2), retries=3)
        await client.connect()
        gateway.init = "close_after"
        gateway.drop_all()
        await asyncio.sleep(1.0)
        connections = gateway.connections
        await client.close()
    # 1 + 4 attempts of the background round (0.05, 0.1, 0.2, 0.2 s apart), then it gives up.
    assert 2 <= connections <= 6, connections
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]  # the loss, then giving up


async def test_requests_to_a_gateway_that_hangs_up_after_init_connect_fail_in_bounded_time() -> (
    None
):
    async with hostile() as gateway:
        client = client_for(gateway, retries=2, timeout=None)
        await client.connect()
        gateway.init = "close_after"
        gateway.drop_all()
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(
                *(client.get_short_interest("US.AAPL") for _ in range(8)), return_exceptions=True
            )
        await client.close()
    assert all(isinstance(r, ConnectError | ConnectionLostError) for r in results), results


async def test_a_gateway_that_never_serves_anything_fails_requests_in_bounded_time() -> None:
    async with (
        hostile(script=lambda r: "drop") as gateway,
        client_for(gateway, retries=2, timeout=None) as client,
    ):
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(
                *(client.get_short_interest(f"US.S{i}") for i in range(6)),
                return_exceptions=True,
            )
    assert all(isinstance(r, ConnectionLostError | ConnectError) for r in results), results


# -- resends charged to whoever caused them --------------------------------------------------------


HEALTHY = ["US.AAPL", "US.TSLA", "US.NVDA", "HK.00700", "HK.09988", "HK.00005", "US.MSFT"]


async def test_a_poisonous_symbol_fails_alone_and_every_other_walk_completes() -> None:
    # Before: 5 of the 7 healthy symbols failed with it, their rows lost.
    def script(request: Request) -> Fault:
        return "drop" if request.code == "US.POISON" else "reply"

    async with (
        hostile(script=script, rows=60) as gateway,
        client_for(gateway, reconnect_delay=(0.01, 0.05)) as client,
    ):
        async with asyncio.timeout(GUARD):
            with pytest.raises(FetchManyError) as info:
                await client.fetch_short_interest_many([*HEALTHY, "US.POISON"], num=10)
    error = info.value
    assert list(error.failures) == ["US.POISON"]
    assert isinstance(error.failures["US.POISON"], ConnectionLostError)
    for code in HEALTHY:
        rows = error.frame[error.frame["code"] == code]
        assert frame_dates(rows) == dates_of(code, 60), code
    poison = [r for r in gateway.requests if r.code == "US.POISON"]
    assert len(poison) >= 4  # sent alone 4 times (retries=3) before it was charged out


@pytest.mark.parametrize("k", [2, 4, 8])
async def test_sixteen_walks_complete_under_a_drop_on_every_kth_request(k: int) -> None:
    # Before: 7 to 13 of the 16 walks failed with ConnectionLostError under the defaults.
    def script(request: Request) -> Fault:
        return "drop" if request.on_connection % k == 0 else "reply"

    codes = [f"US.S{i:02d}" for i in range(16)]
    async with (
        hostile(script=script, rows=60) as gateway,
        Client(gateway.host, gateway.port, rate_limit=None) as client,
    ):
        async with asyncio.timeout(GUARD):
            frame = await client.fetch_short_interest_many(codes, num=10, concurrency=16)
    for code in codes:
        assert frame_dates(frame[frame["code"] == code]) == dates_of(code, 60), code
    assert gateway.connections > 16 // k


@pytest.mark.parametrize("k", [2, 4])
async def test_paced_walks_complete_under_a_drop_on_every_kth_request(k: int) -> None:
    # The client's limiter spaces requests out, so each is alone in flight when the gateway drops
    # on its k-th: being alone is no proof of guilt on a connection that has served others.
    # Before: every such drop was charged to the lone request, and walks failed with
    # ConnectionLostError (2 of 16 under 5 per 0.5 s with k = 2).
    def script(request: Request) -> Fault:
        return "drop" if request.on_connection % k == 0 else "reply"

    codes = [f"US.S{i:02d}" for i in range(16)]
    async with (
        hostile(script=script, rows=40) as gateway,
        client_for(gateway, rate_limit=SlidingWindowLimiter(4, 0.05)) as client,
    ):
        async with asyncio.timeout(GUARD):
            frame = await client.fetch_short_interest_many(codes, num=10)
    for code in codes:
        assert frame_dates(frame[frame["code"] == code]) == dates_of(code, 40), code


# -- the first request on a new connection ---------------------------------------------------------


async def test_a_timeout_while_waiting_for_room_after_a_drop_spares_the_other_waiters() -> None:
    # After a drop the new connection carries one request at a time and the others wait for
    # room on one shared future. Before: the first waiter to time out cancelled that future, so
    # every other waiter got a bare CancelledError (not a MoomooError), and asyncio.gather or a
    # TaskGroup around them took the caller down with it.
    def script(request: Request) -> Fault:
        if request.connection == 1:
            return "drop"
        return "stall" if request.on_connection == 1 else "reply"

    async with (
        hostile(script=script, stall=0.6) as gateway,
        client_for(gateway, timeout=GUARD) as client,
    ):
        patient = [
            asyncio.create_task(client.get_short_interest(code))
            for code in ("US.AAPL", "US.MSFT", "US.TSLA", "US.NVDA")
        ]
        # Three of them now wait for room behind the stalled one on the second connection.
        await until(lambda: any(r.connection == 2 for r in gateway.requests))
        with pytest.raises(RequestTimeoutError, match="had no room"):
            await client.get_short_interest("US.AMZN", timeout=0.1)
        async with asyncio.timeout(GUARD):
            pages = await asyncio.gather(*patient)
    assert [page.code for page in pages] == ["US.AAPL", "US.MSFT", "US.TSLA", "US.NVDA"]
    assert all(len(page) > 0 for page in pages)


async def test_an_unanswered_request_after_a_drop_does_not_hold_the_others_back() -> None:
    # After a drop the new connection carries one request at a time until replies come. Before:
    # when OpenD never answered that one request (but kept answering KeepAlives), every other
    # request waited behind it for ever with timeout=None, and with a timeout failed with it.
    # KeepAlives answered after the request show it did not kill the connection.
    def script(request: Request) -> Fault:
        if request.connection == 1:
            return "drop"
        return "silent" if request.on_connection == 1 else "reply"

    async with (
        hostile(script=script, keepalive_interval=1) as gateway,
        client_for(gateway, timeout=None) as client,
    ):
        tasks = [
            asyncio.create_task(client.get_short_interest(code))
            for code in ("US.AAPL", "US.MSFT", "US.TSLA", "US.NVDA")
        ]
        done, pending = await asyncio.wait(tasks, timeout=GUARD, return_when="FIRST_COMPLETED")
        async with asyncio.timeout(GUARD):
            while len(done) < 3:
                more, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
                done |= more
        assert len(pending) == 1  # the one OpenD never answered: timeout=None waits for it
        assert all(len(task.result()) > 0 for task in done)
        (silent,) = pending
        silent.cancel()
