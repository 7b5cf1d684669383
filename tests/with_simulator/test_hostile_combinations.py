"""Combinations of faults found by attacking the restructured client (issue 9, second pass).

Each test failed on the client as merged; the comments say how.
"""

from __future__ import annotations

import asyncio

import pytest

from aiomoomoo import Client, RequestTimeoutError

from ._hostile import Fault, HostileGateway, Request, hostile

pytestmark = pytest.mark.anyio

#: Keeps a broken test from hanging; never reached by a passing one.
GUARD = 20.0


def client_for(gateway: HostileGateway, **options: object) -> Client:
    options.setdefault("rate_limit", None)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    return Client(gateway.host, gateway.port, **options)  # type: ignore[arg-type]


async def until(condition: object, what: str) -> None:
    async with asyncio.timeout(GUARD):
        while not condition():  # type: ignore[operator]
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
        await until(lambda: any(r.connection == 2 for r in gateway.requests), "a resend")
        with pytest.raises(RequestTimeoutError, match="had no room"):
            await client.get_short_interest("US.AMZN", timeout=0.1)
        async with asyncio.timeout(GUARD):
            pages = await asyncio.gather(*patient)
    assert [page.code for page in pages] == ["US.AAPL", "US.MSFT", "US.TSLA", "US.NVDA"]
    assert all(len(page) > 0 for page in pages)
