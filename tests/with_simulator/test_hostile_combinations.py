"""Combinations of faults found by attacking the restructured client (issue 9, second pass).

Each test failed on the client as merged; the comments say how.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aiomoomoo import Client, RateLimitError, RequestTimeoutError, SlidingWindowLimiter

from ._fixtures import frame_dates
from ._hostile import Fault, HostileGateway, Request, dates_of, hostile

pytestmark = pytest.mark.anyio

#: Keeps a broken test from hanging; never reached by a passing one.
GUARD = 20.0


def client_for(gateway: HostileGateway, **options: object) -> Client:
    options.setdefault("rate_limit", None)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    return Client(gateway.host, gateway.port, **options)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (within GUARD): the gateway's record is plain data."""
    async with asyncio.timeout(GUARD):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


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


async def test_a_refusal_stating_an_absurd_count_is_a_rate_limit_error() -> None:
    # Before: int() of the 5000-digit count raised ValueError (Python's limit on integer
    # strings), a bad-argument type, out of the gateway's data.
    absurd = "9" * 5000
    refusal = (
        "Get short interest is too frequent, request failed, no more than "
        f"{absurd} times every 30 seconds."
    )
    async with (
        hostile(refusals={"US.AAPL": refusal}) as gateway,
        client_for(gateway, timeout=GUARD, rate_limit_wait=0) as client,
    ):
        with pytest.raises(RateLimitError) as info:
            await client.get_short_interest("US.AAPL")
    assert info.value.quota is None


async def test_a_refusal_stating_an_absurd_period_does_not_freeze_the_limiter() -> None:
    # Before: "1 time every 10^9 seconds" became a window of the client's limiter, so every later
    # request waited for a slot for ever; the wait for the client's own quota is outside the
    # request's timeout, so nothing ended it.
    refusal = (
        "Get short interest is too frequent, request failed, no more than 1 times every "
        "1000000000 seconds."
    )
    limiter = SlidingWindowLimiter(30, 30.0)
    async with (
        hostile(refusals={"US.AAPL": refusal}) as gateway,
        client_for(gateway, timeout=GUARD, rate_limit=limiter, rate_limit_wait=0) as client,
    ):
        with pytest.raises(RateLimitError):
            await client.get_short_interest("US.AAPL")
        async with asyncio.timeout(GUARD):
            page = await client.get_short_interest("US.MSFT")
    assert len(page) > 0
    assert limiter.limits == ((30, 30.0),)


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
