"""The walk over real sockets: a gateway whose pages make no progress ends every walk at once,
while the simulator's real paging (newest first, disjoint pages) and ``since`` pass untouched."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from aiomoomoo import Client, FetchManyError, ProtocolError, ShortInterestPage

from ._fixtures import client_of, frame_dates, history_dates, serving
from ._hostile import hostile

pytestmark = pytest.mark.anyio


async def test_pages_of_the_same_rows_under_fresh_keys_end_the_walk_quickly() -> None:
    async with (
        hostile(repeat=True) as gateway,
        Client(gateway.host, gateway.port, rate_limit=None, timeout=5) as client,
    ):
        async with asyncio.timeout(10):
            with pytest.raises(ProtocolError, match=r"US\.AAPL rows dated .* no progress"):
                await client.fetch_short_interest("US.AAPL")
        assert [r.next_key for r in gateway.requests] == ["", "k1"]
        pages: list[ShortInterestPage] = []

        async def consume() -> None:
            async with asyncio.timeout(10):
                async for page in client.iter_short_interest("HK.00700", num=1):
                    pages.append(page)

        with pytest.raises(ProtocolError, match="after rows dated down to 2026-04-30"):
            await consume()
        assert len(pages) == 1
        async with asyncio.timeout(10):
            with pytest.raises(FetchManyError, match="no progress") as caught:
                await client.fetch_short_interest_many(["US.AAPL", "HK.00700"])
        assert all(isinstance(e, ProtocolError) for e in caught.value.failures.values())
        assert len(caught.value.failures) == 2


@pytest.mark.parametrize("num", [1, 7, 50])
async def test_the_simulators_paging_passes_the_progress_guard(num: int) -> None:
    async with serving() as sim, client_of(sim) as client:
        frame = await client.fetch_short_interest("HK.00700", num=num)
        assert frame_dates(frame) == history_dates(sim, "HK.00700")
        since = dt.date(2025, 6, 1)
        recent = await client.fetch_short_interest("US.AAPL", num=num, since=since)
        assert frame_dates(recent) == [
            day for day in history_dates(sim, "US.AAPL") if day >= since.isoformat()
        ]
