"""OpenD's refusals end to end: which texts are rate limits, the retry pause, and the budget.

The simulator refuses in OpenD's real templates (``lang`` picks English or Chinese); other texts
are put in its mouth by wrapping the handler's ``fail``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time

import aiolimiter
import pytest
from google.protobuf.message import Message

from aiomoomoo import (
    Client,
    RateLimitError,
    ServerError,
    ShortInterestPage,
    SlidingWindowLimiter,
    UnknownSecurityError,
)
from aiomoomoo.testing import Lang, Quota, _handler, _messages

from ._fixtures import busiest_window, client_of, serving

pytestmark = pytest.mark.anyio


def say_instead(monkeypatch: pytest.MonkeyPatch, ret_msg: str | None, *, err_code: bool) -> None:
    """Make the simulator's every failure say ``ret_msg`` (or its own text), with or without
    an errCode."""
    fail = _messages.fail

    def instead(response: Message, message: str, code: int) -> Message:
        fail(response, message if ret_msg is None else ret_msg, code)
        if not err_code:
            response.ClearField("errCode")
        return response

    monkeypatch.setattr(_handler, "fail", instead)


@pytest.mark.parametrize(
    "ret_msg",
    [
        "invalid kline frequency parameter",
        "频率参数错误",
        "历史K线额度不足，剩余0",  # noqa: RUF001
        "订阅额度不足",
    ],
)
async def test_a_mention_of_frequency_or_an_exhausted_allowance_is_no_rate_limit(
    monkeypatch: pytest.MonkeyPatch, ret_msg: str
) -> None:
    # Taken for a rate limit before, a bad parameter was resent for a whole minute.
    say_instead(monkeypatch, ret_msg, err_code=True)
    async with serving() as sim, client_of(sim, rate_limit=(30, 30.0)) as client:
        async with asyncio.timeout(10):
            with pytest.raises(ServerError) as refused:
                await client.get_short_interest("US.NOSUCH")
        assert sim.stats.requests == 1  # not retried
        assert client.rate_limiter.limits == ((30, 30.0),)  # type: ignore[union-attr]
    assert type(refused.value) is ServerError
    assert refused.value.ret_msg == ret_msg


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_opends_refusal_is_a_rate_limit_carrying_its_budget(language: Lang) -> None:
    async with serving(quota=Quota(2, 30)) as sim, client_of(sim, rate_limit_wait=0) as client:
        sim.lang = language
        await asyncio.gather(*(client.get_short_interest("US.AAPL") for _ in range(2)))
        with pytest.raises(RateLimitError) as refused:
            await client.get_short_interest("US.AAPL")
    assert refused.value.quota == (2, 30.0)
    assert refused.value.err_code == 3
    assert ("频率太高" if language == "zh" else "is too frequent") in refused.value.ret_msg


async def test_an_absent_err_code_is_none_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    say_instead(monkeypatch, None, err_code=False)
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(UnknownSecurityError) as unknown:
            await client.get_short_interest("US.NOSUCH")
    assert unknown.value.err_code is None
    assert "errCode" not in str(unknown.value)


async def test_the_rate_limit_pause_doubles_up_to_rate_limit_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # aiolimiter's AsyncLimiter(100, 5) budgets 0.05 s a request, the first pause; a wrapped
    # limiter is never tightened, so the server's 1 per 30 s does not change it.
    caplog.set_level(logging.INFO, logger="aiomoomoo")
    async with (
        serving(quota=Quota(1, 30)) as sim,
        client_of(sim, rate_limit=aiolimiter.AsyncLimiter(100, 5), rate_limit_wait=1.0) as client,
    ):
        await client.get_short_interest("US.AAPL")
        with pytest.raises(RateLimitError):
            await client.get_short_interest("US.AAPL")
    pauses = [
        float(match[1])
        for record in caplog.records
        if (match := re.search(r"retrying in ([\d.]+) s", record.getMessage()))
    ]
    # Doubling from 0.05 s; the last pause is what rate_limit_wait has left.
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.25]
    assert sim.stats.rate_limited == 6


async def test_a_default_client_adopts_a_tighter_gateway_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The gateway allows 5 per 0.3 s, the default client believes 30 per 30 s. Before, the
    # client kept sending bursts the gateway refused, pausing 1 s, 2 s, ... and ran into its own
    # 30-per-30-s limit: far longer than a minute. Now the first refusal teaches it the budget,
    # which it enforces beside its own window (so 12 calls, refusals included, stay within it).
    caplog.set_level(logging.WARNING, logger="aiomoomoo")
    period, count, calls = 0.3, 5, 12
    async with serving(quota=Quota(count, period)) as sim, Client(sim.host, sim.port) as client:
        start = time.monotonic()
        async with asyncio.timeout(10):
            pages = await asyncio.gather(
                *(client.get_short_interest("US.AAPL") for _ in range(calls))
            )
        elapsed = time.monotonic() - start
        limiter = client.rate_limiter
        assert isinstance(limiter, SlidingWindowLimiter)
        assert limiter.limits == ((count, period), (30, 30.0))
    assert all(isinstance(page, ShortInterestPage) for page in pages)
    # The first burst is on the wire before the first refusal comes back: 15 of it are refused,
    # and nothing after.
    assert sim.stats.rate_limited == calls - count
    assert len(sim.stats.accepted_at) == calls
    assert busiest_window(sim.stats.accepted_at, period) == count
    optimum = period * (math.ceil(calls / count) - 1)
    # Loose on purpose (a loaded machine); before, this took over 30 s.
    assert optimum <= elapsed <= optimum + 3.0, f"{calls} calls took {elapsed:.2f} s"
    learned = [r for r in caplog.records if "OpenD allows" in r.getMessage()]
    assert len(learned) == 1  # logged once, not once per refusal
    assert "5 requests per 0.3 s" in learned[0].getMessage()


async def test_a_stated_budget_never_loosens_the_users_own_limit() -> None:
    # The user allows 5 per 0.5 s; the gateway refuses, stating 1 per 0.02 s (a faster rate).
    # Before, the stated budget replaced the user's window and the client sent 25 requests in
    # one 0.5 s window; now both hold.
    own, calls = (5, 0.5), 12
    async with (
        serving(quota=Quota(1, 0.02)) as sim,
        Client(sim.host, sim.port, rate_limit=own) as client,
    ):
        async with asyncio.timeout(10):
            await asyncio.gather(*(client.get_short_interest("US.AAPL") for _ in range(calls)))
        limiter = client.rate_limiter
        assert isinstance(limiter, SlidingWindowLimiter)
        assert limiter.limits == ((1, 0.02), own)
    assert sim.stats.rate_limited >= 1
    assert len(sim.stats.accepted_at) == calls
    assert busiest_window(sim.stats.accepted_at, own[1]) <= own[0]
