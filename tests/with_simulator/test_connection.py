"""The connection under the client, against the simulator over loopback.

One socket per client, InitConnect, keep-alive at OpenD's cadence, routing by serial however
replies are cut, ordered or interleaved with pushes, write coalescing, timeouts, cancellation,
connection loss and reconnects, closing, and the warning for a client nobody closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest

from aiomoomoo import (
    Client,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    GatewayEvent,
    MoomooError,
    RequestTimeoutError,
)
from aiomoomoo._connection import Connection
from aiomoomoo._wire import ProtoId
from aiomoomoo.testing import Faults, OpenDSimulator, SimulatorThread

from ._fixtures import client_of, frame_dates, history_dates, serving

pytestmark = pytest.mark.anyio


def connection_of(client: Client) -> Connection:
    connection = client._connection
    assert connection is not None
    return connection


def waiting_requests(connection: Connection) -> list[int]:
    """Serials of requests a caller still waits for (KeepAlives have no caller)."""
    return [serial for serial, entry in connection._pending.items() if entry.future is not None]


async def eventually(condition: Any, timeout: float = 2.0) -> None:
    """Wait until ``condition()`` is true, polling; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        # Polling: the conditions are state of the client or the simulator, not events.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# -- connecting ------------------------------------------------------------------------------


async def test_one_socket_and_initconnect_per_client() -> None:
    async with serving() as sim, client_of(sim) as client:
        info = client.connection_info
        assert info is not None
        assert info.conn_id != 0
        assert info.server_version == 1011
        assert info.keepalive_interval == 10
        await asyncio.gather(*(client.get_short_interest("US.AAPL") for _ in range(20)))
        assert sim.stats.connections == 1
        assert sim.connection_count == 1
        assert f"{sim.host}:{sim.port} connected" in repr(client)
    assert repr(client).startswith(f"<Client {sim.host}:{sim.port} closed")
    assert client.connection_info is None


async def test_connect_fails_fast_with_a_clear_error() -> None:
    async with serving() as sim:
        port = sim.port
    start = time.monotonic()
    with pytest.raises(ConnectError, match=f"cannot connect to OpenD at 127.0.0.1:{port}") as info:
        async with Client("127.0.0.1", port):
            pass
    assert time.monotonic() - start < 1.0
    assert "Is OpenD running" in str(info.value)
    assert isinstance(info.value, MoomooError)


# -- keep-alive ------------------------------------------------------------------------------


async def test_keepalive_follows_opends_advertised_interval() -> None:
    # OpenD says 1 s; like the official client we send at 4/5 of it: 0.8 s, 1.6 s, ...
    async with serving(keepalive_interval=1) as sim, client_of(sim) as client:
        assert client.connection_info is not None
        assert client.connection_info.keepalive_interval == 1
        await asyncio.sleep(0.6)
        assert sim.stats.keepalives == 0
        await asyncio.sleep(0.5)
        assert sim.stats.keepalives == 1


async def test_keepalive_keeps_an_idle_connection_alive() -> None:
    async with serving() as sim, client_of(sim, keepalive_interval=0.05) as client:
        first = connection_of(client)
        await asyncio.sleep(0.5)  # three times the 0.165 s liveness limit
        assert 6 <= sim.stats.keepalives <= 14
        assert connection_of(client) is first
        assert first.is_ready
        assert client.reconnects == 0
        # KeepAlive replies leave nothing behind.
        assert len(first._pending) <= 1


async def test_unanswered_keepalives_drop_the_link_and_it_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(answer_keepalive=False)
    async with serving(faults=faults) as sim, client_of(sim, keepalive_interval=0.05) as client:
        first = connection_of(client)
        await eventually(lambda: not first.is_ready)
        assert "sent nothing for" in caplog.text
        await eventually(lambda: client.reconnects >= 1)
        assert sim.stats.connections >= 2
        sim.faults.answer_keepalive = True
        page = await client.get_short_interest("US.AAPL")
        assert len(page) == 10


# -- routing ---------------------------------------------------------------------------------


async def many_pages(
    client: Client, sim: OpenDSimulator, count: int = 40, max_num: int = 50
) -> None:
    """Ask for ``count`` different pages at once and check each got its own rows."""
    codes = sim.codes
    jobs = [(codes[i % len(codes)], 1 + i % max_num) for i in range(count)]
    pages = await asyncio.gather(*(client.get_short_interest(c, num=n) for c, n in jobs))
    for (code, num), page in zip(jobs, pages, strict=True):
        assert frame_dates(page.frame) == history_dates(sim, code)[:num]


@pytest.mark.parametrize(
    ("faults", "count", "max_num"),
    [
        (Faults(), 40, 50),
        (Faults(reorder_window=0.01), 40, 50),
        # Split writes trickle out with a pause per piece: keep the replies small.
        (Faults(split_writes=7), 20, 5),
        (Faults(split_writes=1), 4, 1),
        (Faults(reply_jitter=0.02), 40, 50),
        (Faults(reorder_window=0.005, split_writes=200, reply_jitter=0.005), 30, 10),
    ],
    ids=["plain", "reordered-and-coalesced", "split-7", "split-1", "jitter", "everything"],
)
async def test_replies_find_their_request_however_they_arrive(
    faults: Faults, count: int, max_num: int
) -> None:
    async with serving(faults=faults) as sim, client_of(sim) as client:
        await many_pages(client, sim, count, max_num)
        assert sim.stats.connections == 1


async def test_pushes_reusing_pending_serials_do_not_confuse_routing() -> None:
    events: list[GatewayEvent] = []
    async with (
        serving(faults=Faults(push_every=1, reorder_window=0.005)) as sim,
        client_of(sim, on_event=events.append) as client,
    ):
        await many_pages(client, sim, count=30)
        sim.push_notify("gateway restarted")
        await eventually(lambda: len(events) == 31)
        assert connection_of(client).pushes_received == 31
    assert sim.stats.pushes == 31
    assert events[0] == GatewayEvent(1, "GtwEvent", "simulated push")
    assert events[-1] == GatewayEvent(1, "GtwEvent", "gateway restarted")


async def test_a_failing_event_callback_does_not_break_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(event: GatewayEvent) -> None:
        raise RuntimeError("bug in the user's callback")

    async with (
        serving(faults=Faults(push_every=1)) as sim,
        client_of(sim, on_event=explode) as client,
    ):
        first = connection_of(client)
        await many_pages(client, sim, count=5)
        assert connection_of(client) is first
        assert first.is_ready
        assert client.reconnects == 0
    assert "on_event callback failed" in caplog.text
    assert "bug in the user's callback" in caplog.text


async def test_many_tasks_sending_at_once_share_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving() as sim, client_of(sim) as client:
        connection = connection_of(client)
        transport = connection._transport
        assert transport is not None
        real = transport
        writes: list[int] = []

        class CountingTransport:
            """Counts writes; a proxy, since uvloop's transports have read-only attributes."""

            def write(self, data: bytes | bytearray | memoryview) -> None:
                writes.append(len(data))
                real.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        monkeypatch.setattr(connection, "_transport", CountingTransport())
        await asyncio.gather(*(client.get_short_interest("HK.00700", num=3) for _ in range(100)))
        assert sim.stats.requests == 100
        assert len(writes) <= 2, writes
        monkeypatch.undo()


# -- timeouts and cancellation ---------------------------------------------------------------


async def test_a_request_times_out_with_an_error_that_is_a_timeout_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiomoomoo")
    async with (
        serving(faults=Faults(reply_delay=0.3)) as sim,
        client_of(sim, timeout=0.05) as client,
    ):
        first = connection_of(client)
        # The loop's clock, which its timers follow: uvloop's counts whole milliseconds (whose
        # difference, in floating point, may come out a hair under 0.05).
        clock = asyncio.get_running_loop().time
        start = clock()
        # Raised instead of the page that comes at 0.3 s: the timeout fired first.
        with pytest.raises(RequestTimeoutError, match=r"did not answer proto 3249 .* 0\.05 s"):
            await client.get_short_interest("US.AAPL")
        assert 0.05 - 1e-9 <= clock() - start < 1.0
        assert waiting_requests(first) == []
        # A per-call timeout overrides the client's.
        with pytest.raises(TimeoutError):
            await client.get_short_interest("US.AAPL", timeout=0.02)
        sim.faults.reply_delay = 0.0
        await asyncio.sleep(0.4)  # the late replies arrive and are dropped
        assert "discarding reply to proto 3249" in caplog.text
        page = await client.get_short_interest("US.TSLA", timeout=None)
        assert frame_dates(page.frame) == history_dates(sim, "US.TSLA")[:10]
        assert connection_of(client) is first
        assert client.reconnects == 0
    error = RequestTimeoutError("x")
    assert isinstance(error, TimeoutError)
    assert isinstance(error, MoomooError)


async def test_cancelling_a_waiting_task_forgets_its_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiomoomoo")
    async with (
        serving(faults=Faults(reply_delay=0.15)) as sim,
        client_of(sim, rate_limit=(30, 30.0)) as client,
    ):
        first = connection_of(client)
        task = asyncio.create_task(client.get_short_interest("US.AAPL"))
        keep = asyncio.create_task(client.get_short_interest("HK.00700", num=3))
        await eventually(lambda: len(waiting_requests(first)) == 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(waiting_requests(first)) == 1
        page = await keep
        assert len(page) == 3
        await asyncio.sleep(0.05)
        assert "discarding reply to proto 3249" in caplog.text
        assert waiting_requests(first) == []
        assert connection_of(client) is first
        assert first.is_ready
        # The cancelled request was sent, so it still counts against the quota.
        assert "in_flight=0 recent=2 waiting=0" in repr(client.rate_limiter)
        sim.faults.reply_delay = 0
        assert len(await client.get_short_interest("US.AAPL")) == 10


async def test_cancelling_many_tasks_leaves_a_clean_connection() -> None:
    async with (
        serving(faults=Faults(reply_delay=0.05, reply_jitter=0.05)) as sim,
        client_of(sim) as client,
    ):
        first = connection_of(client)
        tasks = [
            asyncio.create_task(client.get_short_interest("HK.00700", num=5)) for _ in range(100)
        ]
        await asyncio.sleep(0.02)
        for task in tasks[::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 50
        assert all(len(r) == 5 for r in results if not isinstance(r, BaseException))
        await asyncio.sleep(0.06)
        assert waiting_requests(first) == []
        assert connection_of(client) is first


# -- losing the connection -------------------------------------------------------------------


async def test_a_drop_fails_pending_requests_fast_and_the_client_reconnects() -> None:
    async with (
        serving(faults=Faults(reply_delay=2.0)) as sim,
        client_of(sim, retries=0) as client,
    ):
        first = connection_of(client)
        tasks = [asyncio.create_task(client.get_short_interest("US.AAPL")) for _ in range(5)]
        await eventually(lambda: len(waiting_requests(first)) == 5)
        sim.faults.reply_delay = 0
        start = time.monotonic()
        sim.drop_connections()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert time.monotonic() - start < 1.0  # the replies were 2 s away
        assert all(isinstance(r, ConnectionLostError) for r in results), results
        assert all(isinstance(r, ConnectionError) for r in results)
        assert "lost" in str(results[0])
        await eventually(lambda: client.reconnects == 1)
        assert connection_of(client) is not first
        assert len(await client.get_short_interest("US.AAPL")) == 10
        assert sim.stats.connections == 2


async def test_requests_in_flight_are_resent_after_a_drop() -> None:
    async with (
        serving(faults=Faults(reply_delay=0.1)) as sim,
        client_of(sim, retries=1) as client,
    ):
        tasks = [
            asyncio.create_task(client.get_short_interest("HK.00700", num=9)) for _ in range(5)
        ]
        await asyncio.sleep(0.03)
        sim.drop_connections()
        pages = await asyncio.gather(*tasks)
    assert all(frame_dates(p.frame) == history_dates(sim, "HK.00700")[:9] for p in pages)
    assert sim.stats.connections == 2
    assert sim.stats.requests == 10


async def test_reconnect_backs_off_gives_up_and_recovers_when_opend_returns() -> None:
    sim = OpenDSimulator(quota=None)
    await sim.start()
    port = sim.port
    client = Client(sim.host, port, rate_limit=None, retries=2, reconnect_delay=(0.05, 0.1))
    try:
        await client.connect()
        await sim.close()
        start = time.monotonic()
        with pytest.raises(ConnectError, match="Is OpenD running"):
            await client.get_short_interest("US.AAPL")
        # 3 attempts with 2 pauses between them: about 0.025-0.05 s, then 0.05-0.1 s.
        assert 0.07 <= time.monotonic() - start < 1.0
        sim = OpenDSimulator(port=port, quota=None)
        await sim.start()
        assert len(await client.get_short_interest("US.AAPL")) == 10
        assert client.reconnects == 1
    finally:
        await client.close()
        await sim.close()


async def test_an_abort_wakes_requests_waiting_to_write() -> None:
    # Regression: a request paused by write back-pressure went on after the socket was lost
    # and waited for ever for a reply.
    async with serving() as sim, client_of(sim) as client:
        connection = connection_of(client)
        connection.pause_writing()
        waiting = asyncio.create_task(
            connection.request(ProtoId.GET_SHORT_INTEREST, b"", decode=bytes)
        )
        await asyncio.sleep(0.01)
        assert not waiting.done()
        connection.abort(ConnectionLostError("test abort"))
        with pytest.raises(ConnectionLostError, match="test abort"):
            await asyncio.wait_for(waiting, 1.0)
        assert connection._pending == {}


# -- closing ---------------------------------------------------------------------------------


async def test_a_closed_client_refuses_new_requests_before_sending() -> None:
    async with serving() as sim:
        async with client_of(sim) as client:
            await client.get_short_interest("US.AAPL")
        await client.close()  # closing twice is fine
        for call in (
            client.get_short_interest("US.AAPL"),
            client.fetch_short_interest("US.AAPL"),
            client.connect(),
        ):
            with pytest.raises(ClientClosedError, match="is closed; create a new Client") as info:
                await call
            # Named by its address, not by its whole repr with the quota's state.
            assert str(info.value) == (
                f"the Client for {sim.host}:{sim.port} is closed; create a new Client"
            )
        with pytest.raises(ClientClosedError):
            async for _ in client.iter_short_interest("US.AAPL"):
                pass
        await asyncio.sleep(0.02)
        assert sim.stats.requests == 1
        assert sim.connection_count == 0


async def test_closing_fails_requests_in_flight_with_client_closed() -> None:
    async with serving() as sim:
        client = Client(sim.host, sim.port, rate_limit=None)
        await client.connect()
        sim.faults.reply_delay = 1.0
        task = asyncio.create_task(client.get_short_interest("US.AAPL"))
        await eventually(lambda: sim.stats.requests == 1)
        start = time.monotonic()
        await client.close()
        with pytest.raises(ClientClosedError, match="was closed while the request waited"):
            await task
        assert "quota" not in str(task.exception())
        assert time.monotonic() - start < 0.9  # the reply was 1 s away
        assert isinstance(task.exception(), MoomooError)


async def test_close_while_a_request_reconnects_leaves_no_connection_behind() -> None:
    # Regression: a request that was reopening the connection when close() ran kept the new
    # socket, and sent on it, after the client was closed.
    async with serving() as sim:
        client = Client(sim.host, sim.port, rate_limit=None, retries=1)
        await client.connect()
        sim.faults.reply_delay = 0.15  # InitConnect replies too
        task = asyncio.create_task(client.get_short_interest("US.AAPL"))
        await eventually(lambda: sim.stats.requests == 1)
        sim.drop_connections()
        await eventually(lambda: sim.stats.connections == 2)  # the request is reconnecting
        await client.close()
        with pytest.raises(ClientClosedError):
            await task
        await asyncio.sleep(0.2)
        assert sim.connection_count == 0
        assert sim.stats.requests == 1


async def test_an_unclosed_client_warns_and_frees_its_socket() -> None:
    async with serving() as sim:
        client = Client(sim.host, sim.port, rate_limit=None)
        await client.connect()
        connection = connection_of(client)
        only_reference = [client]
        del client
        with pytest.warns(ResourceWarning, match=r"unclosed <Client .* connected"):
            only_reference.clear()
        gc.collect()
        assert not connection.is_ready
        await eventually(lambda: sim.connection_count == 0)


def test_runs_under_plain_asyncio_run() -> None:
    with SimulatorThread(quota=None) as sim:

        async def main() -> tuple[int, int]:
            async with Client(sim.host, sim.port, rate_limit=(30, 30.0)) as client:
                page = await client.get_short_interest("US.AAPL", num=5)
                frame = await client.fetch_short_interest("HK.00700")
                return len(page), len(frame)

        assert asyncio.run(main()) == (5, len(sim.history("HK.00700")))
