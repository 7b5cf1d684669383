"""`BlockingClient` without OpenD: its loop thread's life, closing, argument checks and iterators.

Nothing here reaches a gateway: the client is pointed at a closed loopback port, bad arguments are
refused before any connection is tried, and what runs on the loop thread is the test's own
coroutines, handed over through the client's portal as its methods hand theirs.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from aiomoomoo import BlockingClient, ClientClosedError, ConnectError, SlidingWindowLimiter

T = TypeVar("T")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def client() -> Iterator[BlockingClient]:
    """A client of a closed loopback port, closed after the test."""
    blocking = BlockingClient("127.0.0.1", closed_port(), retries=0, connect_timeout=1.0)
    try:
        yield blocking
    finally:
        blocking.close()


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


def test_bad_options_raise_in_the_callers_thread_before_any_thread_starts() -> None:
    threads_before = threading.active_count()
    with pytest.raises(ValueError, match="port must be from 1 to 65535, got 0"):
        BlockingClient("127.0.0.1", 0)
    with pytest.raises(TypeError, match="rate_limit must be"):
        BlockingClient(rate_limit="fast")
    with pytest.raises(TypeError, match="unexpected keyword"):
        BlockingClient(no_such_option=1)
    assert threading.active_count() == threads_before


def test_it_shows_the_async_clients_options_and_starts_nothing_until_called() -> None:
    threads_before = threading.active_count()
    client = BlockingClient("::1", 4000, timeout=3, retries=1, rate_limit=(5, 2.0))
    assert (client.host, client.port, client.timeout, client.retries) == ("::1", 4000, 3.0, 1)
    limiter = client.rate_limiter
    assert isinstance(limiter, SlidingWindowLimiter)
    assert (limiter.max_requests, limiter.period) == (5, 2.0)
    assert (client.connection_info, client.reconnects, client.closed) == (None, 0, False)
    assert repr(client).startswith("<BlockingClient of <Client ::1:4000 disconnected")
    assert threading.active_count() == threads_before
    client.close()  # no thread to stop, and no warning for a client that never connected
    assert client.closed
    client.close()  # twice is fine
    assert threading.active_count() == threads_before


def test_bad_call_arguments_are_refused_before_anything_is_tried(client: BlockingClient) -> None:
    # The port is closed: a call that got as far as connecting would raise ConnectError.
    with pytest.raises(ValueError, match="num must be from 1 to 50, got 51"):
        client.get_short_interest("US.AAPL", num=51)
    with pytest.raises(ValueError, match="SH"):
        next(client.iter_short_interest("SH.600000"))
    with pytest.raises(TypeError, match="one str"):
        client.fetch_short_interest_many("US.AAPL")
    with pytest.raises(ValueError, match="listed twice"):
        client.fetch_short_interest_many(["US.AAPL", "US.AAPL"])
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        client.fetch_short_interest("US.AAPL", timeout=-1)
    assert client.reconnects == 0


def test_a_failed_with_block_stops_the_loop_thread_and_closes_the_client() -> None:
    threads_before = threading.active_count()
    client = BlockingClient("127.0.0.1", closed_port(), retries=0)
    with pytest.raises(ConnectError, match=r"cannot connect to OpenD at 127\.0\.0\.1:"), client:
        pass
    assert client.closed
    assert threading.active_count() == threads_before
    with pytest.raises(ClientClosedError, match="is closed; create a new client"):
        client.connect()


def test_each_call_runs_on_the_one_loop_thread(client: BlockingClient) -> None:
    async def where() -> tuple[int, asyncio.AbstractEventLoop]:
        return threading.get_ident(), asyncio.get_running_loop()

    threads_before = threading.active_count()
    first = client._call(where)
    assert threading.active_count() == threads_before + 1
    assert client._call(where) == first
    assert first[0] == client._loop_thread_id != threading.get_ident()
    client.close()
    assert threading.active_count() == threads_before
    assert first[1].is_closed()


def test_close_ends_a_call_waiting_in_another_thread_at_once(client: BlockingClient) -> None:
    started = threading.Event()
    ended: list[str] = []

    async def wait_for_ever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cancelled")

    thread, outcome = in_thread(lambda: client._call(wait_for_ever))
    assert started.wait(5)
    begun = time.monotonic()
    client.close()
    thread.join(5)
    assert time.monotonic() - begun < 5
    assert ended == ["cancelled"]
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientClosedError)
    assert str(outcome[0]).endswith("was closed while the request waited")


def test_a_callback_cannot_close_its_own_client(client: BlockingClient) -> None:
    async def close_from_the_loop() -> None:
        client.close()

    with pytest.raises(RuntimeError, match="cannot be closed from its own callbacks"):
        client._call(close_from_the_loop)
    assert not client.closed


def test_leaving_an_iterator_early_closes_the_async_one_on_the_loop(
    client: BlockingClient,
) -> None:
    closed_on: list[int] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for number in range(100):
                yield number
        finally:
            closed_on.append(threading.get_ident())

    seen: list[int] = []
    for number in client._iterate(numbers):
        seen.append(number)
        if number == 2:
            break
    # break dropped the plain iterator, which closed the async one there and then.
    assert seen == [0, 1, 2]
    assert closed_on == [client._loop_thread_id]
    assert list(client._iterate(numbers)) == list(range(100))


def test_an_unconnected_client_left_open_is_collected_quietly() -> None:
    threads_before = threading.active_count()

    async def nothing() -> None:
        return None

    only_reference: list[Any] = [BlockingClient("127.0.0.1", closed_port())]
    only_reference[0]._call(nothing)  # the loop thread runs
    assert threading.active_count() == threads_before + 1
    only_reference.clear()  # warnings are errors here: a ResourceWarning would fail the test
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() != threads_before:
        assert time.monotonic() < deadline, "the loop thread of a collected client kept running"
        time.sleep(0.005)
