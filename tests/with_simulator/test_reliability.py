"""Issue 9 against a hostile gateway: no hang, prompt close, no storm, fair retries, liveness.

Every test here failed on the client before the session rewrite; the comments say how.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from aiomoomoo import (
    Client,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    FetchManyError,
    ProtocolError,
    RequestTimeoutError,
    SlidingWindowLimiter,
)

from ._fixtures import busiest_window, frame_dates
from ._hostile import Fault, HostileGateway, Request, dates_of, hostile

pytestmark = pytest.mark.anyio

#: Keeps a broken test from hanging; never reached by a passing one.
GUARD = 20.0


def client_for(gateway: HostileGateway, **options: object) -> Client:
    options.setdefault("rate_limit", None)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    return Client(gateway.host, gateway.port, **options)  # type: ignore[arg-type]


def first_only(fault: Fault) -> Callable[[Request], Fault]:
    return lambda request: fault if request.overall == 1 else "reply"


# -- 1. every request ends by its timeout; protocol errors are prompt ------------------------


async def test_a_reply_with_the_wrong_proto_id_fails_promptly_naming_it() -> None:
    # Before: the entry was popped before the abort, so the request hung until its timeout.
    async with (
        hostile(script=lambda r: "wrong_proto") as gateway,
        client_for(gateway, retries=1, timeout=10.0) as client,
    ):
        start = time.monotonic()
        with pytest.raises(ProtocolError, match=r"serial \d+, a request for proto 3249") as info:
            await client.get_short_interest("US.AAPL")
        assert time.monotonic() - start < 5.0
    assert "with proto 1004" in str(info.value)
    assert len(gateway.requests) == 2  # sent, then resent once: the peer kept breaking it


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong_proto", "with proto 1004"),
        ("garbage", "undecodable reply to proto 1001"),
        ("bad_utf8", "retMsg that is not UTF-8"),
    ],
)
async def test_a_protocol_error_in_init_connect_is_a_prompt_connect_error(
    fault: str, message: str
) -> None:
    # Before: a wrong proto id waited the whole connect timeout, a garbage body was a
    # DecodeError cause and a non-UTF-8 retMsg escaped as TypeError.
    async with hostile(init=fault) as gateway:
        client = client_for(gateway, connect_timeout=10.0)
        start = time.monotonic()
        with pytest.raises(ConnectError, match=message) as info:
            await client.connect()
        await client.close()
    assert time.monotonic() - start < 5.0
    assert isinstance(info.value.__cause__, ProtocolError)


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


# -- 2. close() fails every request at once --------------------------------------------------


async def test_close_fails_requests_queued_for_quota_at_once() -> None:
    # Before: each queued request learned it was closed only when it got a slot, one slot per
    # period (here 19 s for 38 of them; 300 under the default quota took 4.5 minutes).
    async with hostile() as gateway:
        client = client_for(gateway, rate_limit=(2, 1.0))
        await client.connect()
        tasks = [asyncio.create_task(client.get_short_interest("US.AAPL")) for _ in range(40)]
        await asyncio.sleep(0.2)
        assert sum(t.done() for t in tasks) == 2
        start = time.monotonic()
        await client.close()
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(*tasks, return_exceptions=True)
        closed_in = time.monotonic() - start
    assert all(isinstance(r, ClientClosedError) for r in results[2:]), results
    assert closed_in < 2.0  # before: 19 s


async def test_a_closed_clients_queued_requests_leave_a_shared_limiter() -> None:
    # Before: the closed client's dead waiters took 10 slots (5 periods) ahead of the live one.
    shared = SlidingWindowLimiter(2, 0.3)
    async with hostile() as gateway:
        dead = client_for(gateway, rate_limit=shared)
        live = client_for(gateway, rate_limit=shared)
        await dead.connect()
        await live.connect()
        queued = [asyncio.create_task(dead.get_short_interest("US.AAPL")) for _ in range(12)]
        await asyncio.sleep(0.05)
        await dead.close()
        start = time.monotonic()
        pages = await asyncio.gather(*(live.get_short_interest("HK.00700") for _ in range(4)))
        took = time.monotonic() - start
        await live.close()
        await asyncio.gather(*queued, return_exceptions=True)
    assert [len(p) for p in pages] == [10] * 4
    # The first two slots free up one period after the dead client's two sent requests.
    assert took < 1.5, f"the live client waited {took:.2f} s"  # before: behind 10 dead requests
    assert "waiting=0" in repr(shared)


async def test_close_fails_a_request_waiting_for_a_reconnect_at_once() -> None:
    async with hostile() as gateway:
        client = client_for(gateway, reconnect_delay=(5.0, 5.0), retries=5, timeout=None)
        await client.connect()
        gateway.drop_all()
        await asyncio.sleep(0.05)
        task = asyncio.create_task(client.get_short_interest("US.AAPL"))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await client.close()
        with pytest.raises(ClientClosedError, match="was closed while the request waited"):
            await task
        assert time.monotonic() - start < 1.0


# -- 3. no reconnect storm -------------------------------------------------------------------


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


# -- 4. retries finish, charged to whoever caused them ---------------------------------------

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


# -- 5. one corrupt frame is a broken connection, not a failed batch -------------------------


@pytest.mark.parametrize(
    "fault",
    ["corrupt", "garbage", "wrong_proto", "bad_utf8_next_key", "bad_utf8_timestamp"],
)
async def test_one_malformed_reply_is_resent_and_every_walk_completes(fault: Fault) -> None:
    # Before: one bad SHA-1 failed all 8 walks with ProtocolError; a garbage body failed one
    # walk and kept the connection; bad UTF-8 escaped as TypeError or ValueError.
    def script(request: Request) -> Fault:
        return fault if request.overall == 5 else "reply"

    codes = [f"HK.{i:05d}" for i in range(1, 9)]
    async with hostile(script=script, rows=40) as gateway, client_for(gateway) as client:
        async with asyncio.timeout(GUARD):
            frame = await client.fetch_short_interest_many(codes, num=10, concurrency=8)
    for code in codes:
        assert frame_dates(frame[frame["code"] == code]) == dates_of(code, 40), code
    assert gateway.connections == 2


@pytest.mark.parametrize(
    "fault", ["garbage", "wrong_proto", "bad_utf8_ret_msg", "bad_utf8_next_key"]
)
async def test_a_peer_that_keeps_sending_malformed_replies_is_a_protocol_error(
    fault: Fault,
) -> None:
    async with (
        hostile(script=lambda r: fault) as gateway,
        client_for(gateway, retries=1) as client,
    ):
        with pytest.raises(ProtocolError):
            await client.get_short_interest("US.AAPL")
    assert len(gateway.requests) == 2


# -- 6. liveness -----------------------------------------------------------------------------


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


# -- 10. the gateway never sees more than N in a window, even after timeouts ------------------


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


def test_the_client_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> int:
        async with hostile() as gateway, client_for(gateway) as client:
            return len(await client.get_short_interest("US.AAPL"))

    assert uvloop.run(main()) == 10
