"""OpenD's rate-limit refusals as a hostile gateway words them: a refusal stating an absurd count
is still a `RateLimitError`, and one stating an absurd period never freezes the client's limiter.
"""

from __future__ import annotations

import asyncio

import pytest

from aiomoomoo import RateLimitError, SlidingWindowLimiter

from ._hostile import GUARD, client_for, hostile

pytestmark = pytest.mark.anyio


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
