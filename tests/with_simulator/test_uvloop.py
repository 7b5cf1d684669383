"""The client on uvloop's event loop, a common choice in production: the same calls, the same
results as on asyncio's own loop."""

from __future__ import annotations

import pytest

from aiomoomoo import Client
from aiomoomoo.testing import OpenDSimulator

uvloop = pytest.importorskip("uvloop", reason="uvloop is in the 'test' and 'bench' extras")


async def _fetch_everything() -> tuple[int, int, int]:
    async with (
        OpenDSimulator(quota=None) as sim,
        Client(sim.host, sim.port, rate_limit=None, timeout=5) as client,
    ):
        page = await client.get_short_interest("US.AAPL", num=5)
        frame = await client.fetch_short_interest("HK.00700")
        many = await client.fetch_short_interest_many(["US.TSLA", "HK.09988"])
        assert len(frame) == len(sim.history("HK.00700"))
        assert len(many) == len(sim.history("US.TSLA")) + len(sim.history("HK.09988"))
        return len(page), len(frame), len(many)


def test_the_client_runs_on_uvloop() -> None:
    rows, history, many = uvloop.run(_fetch_everything())
    assert rows == 5
    assert history > 0
    assert many > 0
