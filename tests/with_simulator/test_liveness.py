"""A connection's liveness over a socket: a peer trickling a frame it never finishes is recycled,
an advertised keep-alive interval is capped, unanswered KeepAlives do not pile up; and a page
fetched under ``uvloop.run``, as a bot run that way fetches it. The timing itself is pinned
without sockets in ``tests/test_liveness.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from aiomoomoo.testing import Faults

from ._fixtures import client_of, serving
from ._hostile import GUARD, client_for, first_only, hostile

pytestmark = pytest.mark.anyio


async def test_a_peer_trickling_a_frame_it_never_finishes_is_recycled() -> None:
    # Before: every byte counted as life, so the connection was never recycled.
    async with (
        hostile(script=first_only("trickle")) as gateway,
        client_for(gateway, keepalive_interval=0.1, timeout=None) as client,
    ):
        async with asyncio.timeout(GUARD):
            page = await client.get_short_interest("US.AAPL")
        assert client.reconnects == 1
    assert len(page) == 10


async def test_the_advertised_keepalive_interval_is_capped() -> None:
    # Before: an advertised 100 s meant a dead peer went unnoticed for 330 s.
    async with hostile(keepalive_interval=100) as gateway, client_for(gateway) as client:
        info = client.connection_info
        assert info is not None
        assert info.keepalive_interval == 12.0


async def test_unanswered_keepalives_do_not_pile_up() -> None:
    async with (
        serving(faults=Faults(answer_keepalive=False)) as sim,
        client_of(sim, keepalive_interval=0.02) as client,
    ):
        connection = client._connection
        assert connection is not None
        # Pushes keep the link alive while the KeepAlives go unanswered.
        for _ in range(10):
            sim.push_notify()
            await asyncio.sleep(0.02)
        assert sim.stats.keepalives >= 5
        assert len(connection._pending) <= 1


def test_the_client_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> int:
        async with hostile() as gateway, client_for(gateway) as client:
            return len(await client.get_short_interest("US.AAPL"))

    assert uvloop.run(main()) == 10
