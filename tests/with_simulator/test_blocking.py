"""`BlockingClient` against a simulator in a thread: plain calls, many threads on one connection,
calls from inside a running event loop, early exits, errors and closing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pandas as pd
import pytest

import aiomoomoo
from aiomoomoo import (
    BlockingClient,
    ClientClosedError,
    ConnectError,
    FetchManyError,
    Progress,
    UnknownSecurityError,
)
from aiomoomoo.testing import OpenDSimulator, Quota, SimulatorThread

from ._fixtures import assert_strict_quota_kept
from ._official import import_moomoo, quote_context

T = TypeVar("T")
CODES = ["US.AAPL", "HK.00700", "US.TSLA", "HK.09988", "US.NVDA", "HK.00005", "US.SPY", "US.MSFT"]


@pytest.fixture(scope="module")
def opend() -> Iterator[OpenDSimulator]:
    with SimulatorThread(quota=None) as simulator:
        yield simulator


@pytest.fixture
def sim() -> Iterator[OpenDSimulator]:
    """A simulator of the test's own, for tests that count its requests or inject faults."""
    with SimulatorThread(quota=None) as simulator:
        yield simulator


def dates(frame: pd.DataFrame) -> list[str]:
    return [str(day) for day in frame["timestamp_str"]]


def history_dates(simulator: OpenDSimulator, code: str, since: str = "") -> list[str]:
    return [str(r.timestamp_str) for r in simulator.history(code) if str(r.timestamp_str) >= since]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def walks_running(client: BlockingClient) -> int:
    """How many symbol walks of ``iter_short_interest_many`` run on the client's event loop."""

    async def count() -> int:
        return sum(
            getattr(task.get_coro(), "__qualname__", "").endswith(".walk")
            for task in asyncio.all_tasks()
        )

    return client._call(count)


def in_thread(function: Callable[[], T]) -> tuple[threading.Thread, list[T | BaseException]]:
    """Start ``function`` in a thread; the list receives its result or its exception."""
    outcome: list[T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# -- plain use ------------------------------------------------------------------------------


def test_every_method_answers_as_the_async_client(opend: OpenDSimulator) -> None:
    assert aiomoomoo.BlockingClient is BlockingClient
    threads_before = threading.active_count()
    with BlockingClient(opend.host, opend.port, rate_limit=None, timeout=5.0) as client:
        assert (client.host, client.port, client.timeout, client.retries) == (
            opend.host,
            opend.port,
            5.0,
            3,
        )
        assert client.connection_info is not None
        assert client.rate_limiter is None
        assert threading.active_count() == threads_before + 1  # the loop thread

        page = client.get_short_interest("US.AAPL", num=5)
        assert dates(page.us) == history_dates(opend, "US.AAPL")[:5]
        second = client.get_short_interest("US.AAPL", page.next_key, 5, timeout=3.0)
        assert dates(second.frame) == history_dates(opend, "US.AAPL")[5:10]

        pages = list(client.iter_short_interest("HK.00700", num=50))
        assert [d for p in pages for d in dates(p.hk)] == history_dates(opend, "HK.00700")
        assert not pages[-1].has_more

        frame = client.fetch_short_interest("US.TSLA", since="2025-01-01")
        assert dates(frame) == history_dates(opend, "US.TSLA", "2025-01-01")

        events: list[Progress] = []
        many = client.fetch_short_interest_many(["US.AAPL", "HK.09988"], on_progress=events.append)
        assert list(many["code"].unique()) == ["US.AAPL", "HK.09988"]
        assert events[-1].symbols_done == 2
        assert events[-1].rows == len(many)

        results = {r.code: r for r in client.iter_short_interest_many(("US.SPY", "HK.02800"))}
        assert dates(results["HK.02800"].frame) == history_dates(opend, "HK.02800")
        state = client.get_global_state(timeout=3.0)
        assert state.quote_logged_in
        assert state.conn_id == client.connection_info.conn_id
        assert "BlockingClient" in repr(client)
    assert client.closed
    assert threading.active_count() == threads_before


def test_nothing_starts_before_the_first_call(opend: OpenDSimulator) -> None:
    threads_before = threading.active_count()
    client = BlockingClient(opend.host, opend.port)
    assert threading.active_count() == threads_before
    client.close()  # no thread, nothing to stop, no warning
    with pytest.raises(ClientClosedError, match="is closed"):
        client.connect()


# -- threads and event loops ----------------------------------------------------------------


def test_many_threads_share_one_connection_and_one_quota() -> None:
    max_requests, period = 6, 0.3
    with (
        SimulatorThread(quota=Quota(max_requests, period)) as sim,
        BlockingClient(sim.host, sim.port, rate_limit=(max_requests, period)) as client,
    ):
        start = time.monotonic()
        fetch = client.fetch_short_interest
        started = [in_thread(functools.partial(fetch, code)) for code in CODES]
        assert sim.connection_count == 1
        for thread, _ in started:
            thread.join(30)
        elapsed = time.monotonic() - start
        frames = [outcome[0] for _, outcome in started]
        assert sim.stats.connections == 1
    for code, frame in zip(CODES, frames, strict=True):
        assert isinstance(frame, pd.DataFrame), frame
        assert dates(frame) == history_dates(sim, code)
    requests = sum(-(-len(sim.history(code)) // 50) for code in CODES)
    assert_strict_quota_kept(sim, requests, elapsed, max_requests, period)


def test_works_inside_a_running_event_loop_as_in_a_notebook_cell(opend: OpenDSimulator) -> None:
    async def cell() -> tuple[pd.DataFrame, list[str]]:
        # Synchronous calls from the thread that runs this loop, as a Jupyter cell makes them.
        with BlockingClient(opend.host, opend.port) as client:
            frame = client.fetch_short_interest("HK.00700")
            walked = [d for p in client.iter_short_interest("US.AAPL", num=50) for d in dates(p.us)]
            await asyncio.sleep(0)  # the cell's own loop is still alive and well
            return frame, walked

    frame, walked = asyncio.run(cell())
    assert dates(frame) == history_dates(opend, "HK.00700")
    assert walked == history_dates(opend, "US.AAPL")


def test_one_client_serves_two_event_loops_one_after_the_other(opend: OpenDSimulator) -> None:
    with BlockingClient(opend.host, opend.port) as client:

        async def cell() -> int:
            return len(client.get_short_interest("US.AAPL", num=3))

        assert asyncio.run(cell()) == asyncio.run(cell()) == 3


# -- leaving iterators early ----------------------------------------------------------------


def test_breaking_out_of_iter_many_cancels_the_other_walks(sim: OpenDSimulator) -> None:
    with BlockingClient(sim.host, sim.port, rate_limit=None) as client:
        sim.faults.reply_delay = 0.03
        for result in client.iter_short_interest_many(CODES, num=20, concurrency=3):
            assert result.ok
            assert walks_running(client) > 0  # the others, still running, to be cancelled
            break
        assert walks_running(client) == 0
        # A request written just before the break may still be on its way to the simulator.
        time.sleep(0.05)
        sent = sim.stats.requests
        time.sleep(0.15)  # five reply delays: a walk still running would have asked again
        assert sim.stats.requests == sent
        assert sent < sum(-(-len(sim.history(code)) // 20) for code in CODES[:3])


def test_breaking_out_of_iter_short_interest_releases_the_walk(sim: OpenDSimulator) -> None:
    with BlockingClient(sim.host, sim.port, rate_limit=None) as client:
        with contextlib.closing(client.iter_short_interest("US.AAPL", num=5)) as pages:
            first = next(pages)
            assert first.has_more
        assert sim.stats.requests == 1
        for _ in client.iter_short_interest("US.AAPL", num=5):
            break
        assert sim.stats.requests == 2


# -- errors ---------------------------------------------------------------------------------


def test_errors_are_the_async_clients_unchanged(opend: OpenDSimulator) -> None:
    with pytest.raises(TypeError, match="rate_limit"):
        BlockingClient(opend.host, opend.port, rate_limit="fast")
    with pytest.raises(TypeError, match="unexpected keyword"):
        BlockingClient(opend.host, opend.port, no_such_option=1)
    threads_before = threading.active_count()
    with (
        pytest.raises(ConnectError, match="cannot connect"),
        BlockingClient("127.0.0.1", closed_port(), retries=0),
    ):
        pass
    assert threading.active_count() == threads_before  # a failed enter stops the loop thread
    with BlockingClient(opend.host, opend.port) as client:
        before = opend.stats.requests
        with pytest.raises(ValueError, match="num"):
            client.get_short_interest("US.AAPL", num=51)
        with pytest.raises(ValueError, match="SH"):
            list(client.iter_short_interest("SH.600000"))
        with pytest.raises(TypeError, match="one str"):
            client.fetch_short_interest_many("US.AAPL")
        assert opend.stats.requests == before
        with pytest.raises(UnknownSecurityError, match=r"unknown stock") as info:
            client.fetch_short_interest("US.NOPE")
        assert info.value.err_code == 2
        with pytest.raises(FetchManyError) as many:
            client.fetch_short_interest_many(["US.NOPE", "HK.02800"])
        assert set(many.value.failures) == {"US.NOPE"}
        assert dates(many.value.frame) == history_dates(opend, "HK.02800")
        pages = client.iter_short_interest("US.NOPE")
        with pytest.raises(UnknownSecurityError):
            next(pages)
        # The client is fine after all that.
        assert len(client.get_short_interest("US.AAPL", num=2)) == 2


# -- closing --------------------------------------------------------------------------------


def test_close_ends_calls_in_other_threads_at_once(sim: OpenDSimulator) -> None:
    threads_before = threading.active_count()
    client = BlockingClient(sim.host, sim.port, rate_limit=(1, 60.0))
    client.connect()
    sim.faults.reply_delay = 30.0
    in_flight, in_flight_outcome = in_thread(lambda: client.get_short_interest("US.AAPL"))
    eventually(lambda: sim.stats.requests == 1)
    # Waits for a quota slot a minute away.
    queued, queued_outcome = in_thread(lambda: client.get_short_interest("HK.00700"))
    time.sleep(0.05)
    start = time.monotonic()
    client.close()
    in_flight.join(10)
    queued.join(10)
    assert time.monotonic() - start < 10
    for outcome in (in_flight_outcome, queued_outcome):
        assert len(outcome) == 1
        assert isinstance(outcome[0], ClientClosedError), outcome
    assert sim.stats.requests == 1
    eventually(lambda: sim.connection_count == 0)
    assert threading.active_count() == threads_before
    client.close()  # twice is fine
    for call in (
        client.connect,
        lambda: client.get_short_interest("US.AAPL"),
        lambda: list(client.iter_short_interest("US.AAPL")),
    ):
        with pytest.raises(ClientClosedError, match="is closed; create a new client"):
            call()


def test_close_from_another_thread_ends_a_blocking_connect_with_client_closed() -> None:
    with socket.socket() as gateway:
        gateway.bind(("127.0.0.1", 0))
        gateway.listen()
        gateway.settimeout(10)
        client = BlockingClient("127.0.0.1", gateway.getsockname()[1], connect_timeout=60.0)
        thread, outcome = in_thread(client.connect)
        peer, _ = gateway.accept()
        with peer:
            peer.settimeout(10)
            assert peer.recv(1)  # InitConnect is on its way; no answer will come
            client.close()
            thread.join(10)
    assert len(outcome) == 1
    # The connect was cancelled on the loop, but its caller is told why, in the library's terms.
    assert isinstance(outcome[0], ClientClosedError), outcome
    assert str(outcome[0]).endswith("was closed while the request waited")


def test_closing_while_an_iterator_is_open_leaves_nothing_running(sim: OpenDSimulator) -> None:
    threads_before = threading.active_count()
    client = BlockingClient(sim.host, sim.port)
    client.connect()
    pages = client.iter_short_interest("US.AAPL", num=5)
    next(pages)
    client.close()
    with pytest.raises(ClientClosedError):
        next(pages)
    pages.close()
    assert threading.active_count() == threads_before
    eventually(lambda: sim.connection_count == 0)


def test_a_leaked_open_client_warns_and_closes(sim: OpenDSimulator) -> None:
    threads_before = threading.active_count()
    only_reference: list[Any] = [BlockingClient(sim.host, sim.port)]
    only_reference[0].connect()
    assert sim.connection_count == 1
    with pytest.warns(ResourceWarning, match=r"unclosed <BlockingClient of <Client .*connected"):
        only_reference.clear()
    gc.collect()
    eventually(lambda: sim.connection_count == 0)
    assert threading.active_count() == threads_before


def test_an_interrupted_call_cancels_its_request(sim: OpenDSimulator) -> None:
    async def tasks() -> int:
        return len(asyncio.all_tasks())

    with BlockingClient(sim.host, sim.port, rate_limit=None) as client:
        idle = client._call(tasks)
        sim.faults.reply_delay = 30.0
        main_thread = threading.get_ident()
        # Ctrl-C while the call waits: a real SIGINT to this (the main) thread. Python's own
        # handler, set here: a runner that starts pytest in the background has SIGINT ignored.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.2, signal.pthread_kill, (main_thread, signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                client.get_short_interest("US.AAPL")
        finally:
            timer.join()
            signal.signal(signal.SIGINT, previous)

        eventually(lambda: client._call(tasks) == idle)
        sim.faults.reply_delay = 0.0
        assert len(client.get_short_interest("US.AAPL", num=1)) == 1


def test_callbacks_run_on_the_loop_thread(opend: OpenDSimulator) -> None:
    seen: list[int] = []
    with BlockingClient(opend.host, opend.port, on_event=lambda event: None) as client:
        client.fetch_short_interest_many(
            ["US.AAPL"], on_progress=lambda progress: seen.append(threading.get_ident())
        )
        assert seen
        assert set(seen) == {client._loop_thread_id} != {threading.get_ident()}


# The official SDK calls Thread.setDaemon(), deprecated since Python 3.10.
@pytest.mark.filterwarnings(r"ignore:setDaemon\(\) is deprecated:DeprecationWarning")
@pytest.mark.timeout(60)
def test_the_migration_pages_official_call_and_its_blocking_twin_agree(
    opend: OpenDSimulator,
) -> None:
    moomoo = import_moomoo()
    with quote_context(moomoo, opend) as ctx, BlockingClient(opend.host, opend.port) as client:
        for code in ("US.AAPL", "HK.00700"):
            ret, us_df, hk_df = ctx.get_short_interest(code, next_key=None, num=50)
            assert ret == moomoo.RET_OK
            page = client.get_short_interest(code, next_key=None, num=50)
            for official, ours in ((us_df, page.us), (hk_df, page.hk)):
                assert list(ours.columns) == list(official.columns)
                assert ours.attrs["next_key"] == official.attrs["next_key"] == page.next_key
                assert len(ours) == len(official)
                for column in official.columns:
                    assert ours[column].tolist() == official[column].tolist(), column
