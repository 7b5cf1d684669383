"""The public client against the simulator over loopback: pages, walks, input, errors, quota.

Quota tests use short periods (10 requests per 0.5 s) against a simulator that enforces the
same quota strictly, and assert timing bounds that hold on a busy machine but still fail if
the limiter waits too little (the simulator refuses) or too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from typing import Any

import aiolimiter
import pandas as pd
import pytest

from aiomoomoo import (
    HK_COLUMNS,
    US_COLUMNS,
    Client,
    ConnectionLostError,
    GatewayEvent,
    Market,
    MoomooError,
    RateLimitError,
    ServerError,
    ShortInterestPage,
    SlidingWindowLimiter,
    UnknownSecurityError,
    trading_dates,
)
from aiomoomoo.testing import Faults, HkRow, Quota, UsRow

from ._fixtures import (
    assert_strict_quota_kept,
    client_of,
    dates,
    frame_dates,
    history_dates,
    serving,
)

pytestmark = pytest.mark.anyio

US_DTYPES = {
    "timestamp": "Int64",
    "timestamp_str": "string",
    "shares_short": "Int64",
    "short_percent": "float64",
    "avg_daily_share_volume": "Int64",
    "days_to_cover": "float64",
    "close_price": "float64",
    "last_close_price": "float64",
}
HK_DTYPES = {
    "timestamp": "Int64",
    "timestamp_str": "string",
    "aggregated_short": "Int64",
    "aggregated_short_ratio": "float64",
    "close_price": "float64",
    "last_close_price": "float64",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {str(column): str(dtype) for column, dtype in frame.dtypes.items()}


# -- pages and frames ------------------------------------------------------------------------


async def test_us_page_has_both_frames_in_official_shape() -> None:
    async with serving() as sim, client_of(sim) as client:
        page = await client.get_short_interest("US.AAPL")
    assert isinstance(page, ShortInterestPage)
    assert page.code == "US.AAPL"
    assert page.market is Market.US
    assert len(page) == 10  # OpenD's default page size
    assert list(page.us.columns) == list(US_COLUMNS)
    assert list(page.hk.columns) == list(HK_COLUMNS)
    assert dtypes(page.us) == US_DTYPES
    assert dtypes(page.hk) == HK_DTYPES
    assert page.hk.empty
    assert page.frame is page.us
    assert page.has_more
    assert page.next_key not in ("", "-1")
    assert page.us.attrs == {"next_key": page.next_key}
    assert page.hk.attrs == {"next_key": page.next_key}
    assert frame_dates(page.us) == history_dates(sim, "US.AAPL")[:10]
    newest = sim.history("US.AAPL")[0]
    assert isinstance(newest, UsRow)
    assert page.us.iloc[0].tolist() == [
        newest.timestamp,
        newest.timestamp_str,
        newest.shares_short,
        newest.short_percent,
        newest.avg_daily_share_volume,
        newest.days_to_cover,
        newest.close_price,
        newest.last_close_price,
    ]
    assert repr(page) == f"<ShortInterestPage US.AAPL rows=10 next_key={page.next_key!r}>"


async def test_hk_page_and_trading_dates() -> None:
    async with serving() as sim, client_of(sim) as client:
        page = await client.get_short_interest("HK.00700", num=50)
    assert page.frame is page.hk
    assert page.us.empty
    assert dtypes(page.us) == US_DTYPES
    assert dtypes(page.hk) == HK_DTYPES
    assert len(page.hk) == 50
    local = trading_dates(page.hk, Market.HK)
    assert [d.isoformat() for d in local.dt.date] == frame_dates(page.hk)
    assert (local.dt.hour == 0).all()
    # OpenD's timestamps are HK midnight, so a naive UTC reading puts every row a day early.
    naive = pd.to_datetime(page.hk["timestamp"].astype("float64"), unit="s")
    assert all(
        utc + dt.timedelta(days=1) == hk
        for utc, hk in zip(naive.dt.date, local.dt.date, strict=True)
    )


async def test_paging_by_hand_ends_with_minus_one() -> None:
    async with serving() as sim, client_of(sim) as client:
        pages = [await client.get_short_interest("US.TSLA", num=50)]
        while pages[-1].next_key != "-1":
            pages.append(await client.get_short_interest("US.TSLA", pages[-1].next_key, 50))
            assert len(pages) < 100
        with pytest.raises(ValueError, match="next_key '-1' marks the last page"):
            await client.get_short_interest("US.TSLA", "-1")
    assert not pages[-1].has_more
    assert [len(p) for p in pages[:-1]] == [50] * (len(pages) - 1)
    assert dates(pages) == history_dates(sim, "US.TSLA")


async def test_iter_walks_the_whole_history_in_order() -> None:
    async with serving() as sim, client_of(sim) as client:
        pages = [page async for page in client.iter_short_interest("HK.00700", num=50)]
    assert dates(pages) == history_dates(sim, "HK.00700")
    assert len(pages) == math.ceil(len(sim.history("HK.00700")) / 50)
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[-1].next_key == "-1"
    assert sim.stats.requests == len(pages)
    assert all(dtypes(p.hk) == HK_DTYPES and dtypes(p.us) == US_DTYPES for p in pages)


async def test_fetch_returns_one_frame_of_everything() -> None:
    async with serving() as sim, client_of(sim) as client:
        frame = await client.fetch_short_interest("US.AAPL")
        hk = await client.fetch_short_interest("HK.09988")
    assert frame_dates(frame) == history_dates(sim, "US.AAPL")
    assert list(frame.columns) == list(US_COLUMNS)
    assert dtypes(frame) == US_DTYPES
    assert frame.attrs["next_key"] == "-1"
    assert frame.index.tolist() == list(range(len(frame)))
    assert frame_dates(hk) == history_dates(sim, "HK.09988")
    assert dtypes(hk) == HK_DTYPES
    # 50 rows a page: the fewest requests.
    expected = math.ceil(len(frame) / 50) + math.ceil(len(hk) / 50)
    assert sim.stats.requests == expected


async def test_since_stops_the_walk_early() -> None:
    async with serving() as sim, client_of(sim) as client:
        frame = await client.fetch_short_interest("US.AAPL", since="2025-01-01")
        walked = sim.stats.requests
        pages = [p async for p in client.iter_short_interest("HK.00700", since=dt.date(2026, 1, 1))]
    expected = [d for d in history_dates(sim, "US.AAPL") if d >= "2025-01-01"]
    assert frame_dates(frame) == expected
    # The walk stops with the page that holds the first older row.
    assert walked == len(expected) // 50 + 1
    assert all(d >= "2026-01-01" for d in dates(pages[:-1]))
    assert dates(pages)[-1] < "2026-01-01"
    assert pages[-1].has_more  # stopped by since=, not by the end of the history


async def test_an_empty_history_gives_empty_frames_with_dtypes() -> None:
    async with serving() as sim:
        sim.add_symbol("US.EMPTY", rows=[])
        async with client_of(sim) as client:
            page = await client.get_short_interest("US.EMPTY")
            frame = await client.fetch_short_interest("US.EMPTY")
    assert len(page) == 0
    assert page.next_key == "-1"
    assert dtypes(page.us) == US_DTYPES
    assert dtypes(page.hk) == HK_DTYPES
    assert frame.empty
    assert list(frame.columns) == list(US_COLUMNS)
    assert dtypes(frame) == US_DTYPES
    assert frame.attrs["next_key"] == "-1"


async def test_absent_fields_are_missing_values() -> None:
    full = HkRow(
        timestamp=1776960000,
        timestamp_str="2026-04-24",
        close_price=467.8,
        last_close_price=470.2,
        aggregated_short=50_600_000,
        aggregated_short_ratio=0.55,
    )
    sparse = HkRow(
        timestamp=1776355200,
        timestamp_str=None,
        close_price=None,
        last_close_price=461.0,
        aggregated_short=None,
        aggregated_short_ratio=0.51,
    )
    us_sparse = UsRow(*([None] * 8))
    async with serving() as sim:
        sim.add_symbol("HK.09999", rows=[full, sparse])
        sim.add_symbol("US.SPARSE", rows=[us_sparse])
        async with client_of(sim) as client:
            hk = (await client.get_short_interest("HK.09999")).hk
            us = await client.fetch_short_interest("US.SPARSE")
    assert dtypes(hk) == HK_DTYPES
    assert hk["aggregated_short"].tolist() == [50_600_000, pd.NA]
    assert hk["timestamp_str"].isna().tolist() == [False, True]
    assert hk["close_price"].isna().tolist() == [False, True]
    assert hk["last_close_price"].tolist() == [470.2, 461.0]
    assert dtypes(us) == US_DTYPES
    assert len(us) == 1
    assert us.iloc[0].isna().all()


async def test_leaving_a_walk_early_sends_nothing_more() -> None:
    async with serving() as sim, client_of(sim) as client:
        async for page in client.iter_short_interest("HK.00700", num=5):
            assert len(page) == 5
            break
        async with contextlib.aclosing(client.iter_short_interest("US.AAPL", num=5)) as pages:
            async for _ in pages:
                break
        await asyncio.sleep(0.05)
        assert sim.stats.requests == 2


# -- input is checked before anything is sent ------------------------------------------------

BAD_PAGE_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"code": b"US.AAPL"}, TypeError, r"code must be a str .* got bytes b'US\.AAPL'"),
    ({"code": None}, TypeError, "got NoneType None"),
    ({"code": 700}, TypeError, "got int 700"),
    ({"code": "SH.600000"}, ValueError, "covers only HK and US securities, not SH"),
    ({"code": "SZ.000001"}, ValueError, "only HK and US"),
    ({"code": "AAPL"}, ValueError, r"code 'AAPL' is not '<MARKET>\.<symbol>'"),
    ({"code": "us.AAPL"}, ValueError, "unknown market 'us'"),
    ({"num": 0}, ValueError, "num must be from 1 to 50, got 0"),
    ({"num": 51}, ValueError, "got 51"),
    ({"num": -1}, ValueError, "got -1"),
    ({"num": True}, TypeError, "num must be an int from 1 to 50 or None, got True"),
    ({"num": 10.0}, TypeError, "got 10.0"),
    ({"num": "10"}, TypeError, "got '10'"),
    ({"next_key": 1765774800}, TypeError, "next_key must be a str .* got 1765774800"),
    ({"next_key": b"1765774800"}, TypeError, "got b'1765774800'"),
    ({"next_key": "-1"}, ValueError, "next_key '-1' marks the last page"),
    ({"next_key": ""}, ValueError, "next_key '' is not a page key"),
    ({"timeout": 0}, ValueError, "timeout must be a positive number of seconds or None, got 0"),
    ({"timeout": "1"}, TypeError, "got '1'"),
]


@pytest.mark.parametrize(("arguments", "error", "message"), BAD_PAGE_ARGUMENTS)
async def test_bad_page_arguments_are_refused_before_sending(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    call: dict[str, Any] = {"code": "US.AAPL", **arguments}
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(error, match=message):
            await client.get_short_interest(**call)
        with pytest.raises(error, match=message):
            async for _ in client.iter_short_interest(**call):
                pass
        if "next_key" not in call:
            with pytest.raises(error, match=message):
                await client.fetch_short_interest(**call)
        await asyncio.sleep(0.02)
        assert sim.stats.requests == 0
        assert sim.connection_count == 1


@pytest.mark.parametrize(
    ("since", "error", "message"),
    [
        ("2026-13-01", ValueError, "since '2026-13-01' is not a date in YYYY-MM-DD form"),
        ("yesterday", ValueError, "since 'yesterday'"),
        (20260101, TypeError, "since must be a datetime.date or a 'YYYY-MM-DD' str, got 20260101"),
    ],
)
async def test_bad_since_is_refused_before_sending(
    since: object, error: type[Exception], message: str
) -> None:
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(error, match=message):
            await client.fetch_short_interest("US.AAPL", since=since)  # type: ignore[arg-type]
        with pytest.raises(error, match=message):
            async for _ in client.iter_short_interest("US.AAPL", since=since):  # type: ignore[arg-type]
                pass
        assert sim.stats.requests == 0


# -- server errors ---------------------------------------------------------------------------


async def test_server_failures_carry_opends_message() -> None:
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(UnknownSecurityError) as unknown:
            await client.get_short_interest("US.NOPE")
        with pytest.raises(ServerError) as bad_key:
            await client.get_short_interest("US.AAPL", next_key="not-a-key")
        with pytest.raises(UnknownSecurityError):
            await client.fetch_short_interest("HK.99999")
        # A failure is an error, never an empty result, and the connection is still fine.
        assert len(await client.get_short_interest("US.AAPL")) == 10
    error = unknown.value
    assert isinstance(error, MoomooError)
    assert error.ret_msg == "unknown stock"  # OpenD's words: the code is not in them
    assert "unknown stock" in str(error)
    assert (error.ret_type, error.err_code, error.proto_id) == (-1, 2, 3249)
    assert type(bad_key.value) is ServerError
    assert "invalid nextKey 'not-a-key'" in str(bad_key.value)


# -- quota -----------------------------------------------------------------------------------

PERIOD = 0.5
MAX_REQUESTS = 10


async def burst(client: Client, count: int) -> list[ShortInterestPage | BaseException]:
    return await asyncio.gather(
        *(client.get_short_interest("HK.00700", num=1 + i % 50) for i in range(count)),
        return_exceptions=True,
    )


async def test_default_limiter_burst_has_no_rejections_and_exact_timing() -> None:
    count = 41
    quota = Quota(MAX_REQUESTS, PERIOD)
    async with (
        serving(quota=quota) as sim,
        client_of(sim, rate_limit=(MAX_REQUESTS, PERIOD), rate_limit_wait=0) as client,
    ):
        start = time.monotonic()
        results = await burst(client, count)
        elapsed = time.monotonic() - start
    assert not [r for r in results if isinstance(r, BaseException)]
    assert_strict_quota_kept(sim, count, elapsed, MAX_REQUESTS, PERIOD)


async def test_the_default_rate_limit_is_opends_30_in_30_seconds() -> None:
    async with serving() as sim, Client(sim.host, sim.port) as client:
        limiter = client.rate_limiter
        assert isinstance(limiter, SlidingWindowLimiter)
        assert (limiter.max_requests, limiter.period) == (30, 30.0)
        assert "30/30s" in repr(client)


async def test_a_shared_limiter_keeps_two_clients_under_one_quota() -> None:
    shared = SlidingWindowLimiter(MAX_REQUESTS, PERIOD)
    async with (
        serving(quota=Quota(MAX_REQUESTS, PERIOD)) as sim,
        client_of(sim, rate_limit=shared, rate_limit_wait=0) as one,
        client_of(sim, rate_limit=shared, rate_limit_wait=0) as two,
    ):
        assert one.rate_limiter is two.rate_limiter is shared
        start = time.monotonic()
        results = await asyncio.gather(burst(one, 15), burst(two, 15))
        elapsed = time.monotonic() - start
    assert not [r for rs in results for r in rs if isinstance(r, BaseException)]
    assert sim.stats.rate_limited == 0
    assert PERIOD * 2 <= elapsed <= PERIOD * 2 * 1.25


async def test_aiolimiter_leaky_bucket_overruns_the_strict_quota() -> None:
    # AsyncLimiter(10, 0.5) lets 10 through at once and then one every 0.05 s: 19 inside the
    # first half second, which OpenD's sliding window refuses.
    async with serving(quota=Quota(MAX_REQUESTS, PERIOD)) as sim:
        leaky = aiolimiter.AsyncLimiter(MAX_REQUESTS, PERIOD)
        async with client_of(sim, rate_limit=leaky, rate_limit_wait=0) as client:
            results = await burst(client, 25)
    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert refused
    assert len(refused) == sim.stats.rate_limited
    assert "is too frequent, request failed" in str(refused[0])
    assert refused[0].err_code == 3


async def test_aiolimiter_works_when_our_retry_covers_its_overrun() -> None:
    async with serving(quota=Quota(MAX_REQUESTS, PERIOD)) as sim:
        leaky = aiolimiter.AsyncLimiter(MAX_REQUESTS, PERIOD)
        async with client_of(sim, rate_limit=leaky, rate_limit_wait=5.0) as client:
            results = await burst(client, 25)
    assert all(isinstance(r, ShortInterestPage) for r in results)
    assert sim.stats.rate_limited > 0  # refused, then retried until accepted
    assert len(sim.stats.accepted_at) == 25


async def test_rate_limit_from_opend_is_retried_within_a_bound() -> None:
    # Another process on the same account has used the quota up: OpenD refuses although this
    # client's own limiter has room. The client waits and retries, up to rate_limit_wait.
    async with serving(quota=Quota(4, PERIOD)) as sim:
        async with client_of(sim) as other, client_of(sim, rate_limit=(4, PERIOD)) as client:
            await asyncio.gather(*(other.get_short_interest("US.AAPL") for _ in range(4)))
            start = time.monotonic()
            page = await client.get_short_interest("US.MSFT")
            waited = time.monotonic() - start
            assert len(page) == 10
            assert sim.stats.rate_limited >= 1
            assert 0.2 <= waited <= 2.0

        await asyncio.sleep(PERIOD)
        async with (
            client_of(sim) as other,
            client_of(sim, rate_limit=(4, PERIOD), rate_limit_wait=0.2) as client,
        ):
            await asyncio.gather(*(other.get_short_interest("US.AAPL") for _ in range(4)))
            start = time.monotonic()
            with pytest.raises(RateLimitError, match="is too frequent") as refused:
                await client.get_short_interest("US.MSFT")
            waited = time.monotonic() - start
            # The account's budget is one this client keeps within: it is not changed.
            assert client.rate_limiter.limits == ((4, PERIOD),)  # type: ignore[union-attr]
    assert refused.value.quota == (4, PERIOD)
    assert "no more than 4 times every" in refused.value.ret_msg
    assert 0.2 <= waited <= 1.0


async def test_a_cancelled_request_waiting_for_quota_is_never_sent() -> None:
    async with (
        serving(quota=Quota(2, PERIOD), faults=Faults(reply_delay=0.1)) as sim,
        client_of(sim, rate_limit=(2, PERIOD)) as client,
    ):
        tasks = [asyncio.create_task(client.get_short_interest("US.AAPL")) for _ in range(3)]
        await asyncio.sleep(0.03)
        assert "in_flight=2" in repr(client.rate_limiter)
        assert "waiting=1" in repr(client.rate_limiter)
        tasks[2].cancel()
        pages = await asyncio.gather(*tasks[:2])
        with pytest.raises(asyncio.CancelledError):
            await tasks[2]
        assert [len(p) for p in pages] == [10, 10]
        assert "in_flight=0 recent=2 waiting=0" in repr(client.rate_limiter)
        await asyncio.sleep(PERIOD)
        assert sim.stats.requests == 2


async def test_a_drop_does_not_fail_requests_still_queued_for_quota() -> None:
    # Regression: requests waiting for the quota held on to the connection of the moment they
    # queued; granted after it dropped, they failed without ever being sent.
    async with (
        serving(quota=Quota(2, PERIOD)) as sim,
        client_of(sim, rate_limit=(2, PERIOD), retries=0) as client,
    ):
        sim.faults.reply_delay = 0.1
        tasks = [asyncio.create_task(client.get_short_interest("US.AAPL")) for _ in range(4)]
        await asyncio.sleep(0.05)
        sim.faults.reply_delay = 0
        sim.drop_connections()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results[:2]] == [ConnectionLostError] * 2  # were in flight
    assert all(isinstance(r, ShortInterestPage) for r in results[2:])
    assert sim.stats.requests == 4
    assert sim.stats.rate_limited == 0


# -- many tasks, faults and reconnects -------------------------------------------------------


async def test_120_concurrent_tasks_on_one_client_through_every_fault() -> None:
    faults = Faults(reply_jitter=0.01, split_writes=1500, reorder_window=0.003, push_every=3)
    events: list[GatewayEvent] = []
    async with serving() as sim:
        codes = sim.codes
        async with client_of(sim, on_event=events.append) as client:
            first = {code: await client.get_short_interest(code, num=7) for code in codes}
            sim.faults = faults
            jobs = [(codes[i % len(codes)], 1 + (i * 7) % 50, i % 2 == 1) for i in range(120)]
            pages = await asyncio.gather(
                *(
                    client.get_short_interest(code, first[code].next_key if deep else None, num)
                    for code, num, deep in jobs
                )
            )
            connection = client.connection_info
    assert sim.stats.connections == 1
    assert connection is not None
    for (code, num, deep), page in zip(jobs, pages, strict=True):
        start = 7 if deep else 0
        assert page.code == code
        assert frame_dates(page.frame) == history_dates(sim, code)[start : start + num]
    assert sim.stats.pushes == len(events) > 0
    assert events[0] == GatewayEvent(1, "GtwEvent", "simulated push")


async def test_a_walk_survives_reconnects_without_losing_or_repeating_a_page() -> None:
    async with (
        serving(faults=Faults(drop_after=2)) as sim,
        client_of(sim, retries=1) as client,
    ):
        pages = [page async for page in client.iter_short_interest("HK.00700", num=20)]
        frame = await client.fetch_short_interest("US.NVDA")
    assert dates(pages) == history_dates(sim, "HK.00700")
    assert frame_dates(frame) == history_dates(sim, "US.NVDA")
    assert dtypes(frame) == US_DTYPES
    assert sim.stats.dropped >= 10
    assert client.reconnects == sim.stats.connections - 1 >= 10


async def test_concurrent_walks_survive_reconnects_among_other_faults() -> None:
    codes = ["US.AAPL", "US.SPY", "HK.00005", "HK.02800"]
    faults = Faults(drop_after=5, reply_jitter=0.002, reorder_window=0.002, push_every=2)
    async with (
        serving(faults=faults) as sim,
        client_of(sim, retries=2) as client,
    ):
        frames = await asyncio.gather(*(client.fetch_short_interest(c, num=40) for c in codes))
    for code, frame in zip(codes, frames, strict=True):
        assert frame_dates(frame) == history_dates(sim, code)
    assert sim.stats.dropped > 0


async def test_exhausted_retries_raise_and_the_walk_resumes_from_its_next_key() -> None:
    async with (
        serving(faults=Faults(drop_after=3)) as sim,
        client_of(sim, retries=0) as client,
    ):
        pages: list[ShortInterestPage] = []

        async def walk() -> None:
            async for page in client.iter_short_interest("US.AAPL", num=50):
                pages.append(page)

        with pytest.raises(ConnectionLostError):
            await walk()
        assert len(pages) == 3
        sim.faults.drop_after = None
        async for page in client.iter_short_interest(
            "US.AAPL", num=50, next_key=pages[-1].next_key
        ):
            pages.append(page)
    assert dates(pages) == history_dates(sim, "US.AAPL")
