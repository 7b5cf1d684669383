"""Behaviours that docs/paging.md, docs/errors.md and docs/concurrency.md promise, pinned through
the public API against the simulator (or, where the simulator is too well behaved, a scripted
peer), so that moving code around the client cannot quietly change them.

Each test names the document it holds to; each was checked to fail with the bug it is about
planted in the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pandas as pd
import pytest

from aiomoomoo import (
    Client,
    ConnectError,
    ConnectionLostError,
    Market,
    MoomooError,
    ProtocolError,
    RequestTimeoutError,
)
from aiomoomoo._proto import InitConnect_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._wire import FrameDecoder, ProtoId, encode_frame
from aiomoomoo.cli import main
from aiomoomoo.testing import Faults, OpenDSimulator, SimulatorThread, UsRow

from ._fixtures import busiest_window, client_of, frame_dates, serving
from .conftest import connected, short_interest_request

pytestmark = pytest.mark.anyio

# -- a scripted peer, for what the simulator never does -----------------------------------------

Page = tuple[int, str | None]
"""A scripted page: how many rows, and its nextKey (None: the field left out)."""


def _init_connect_reply() -> bytes:
    response = InitConnect_pb2.Response(retType=0)
    s2c = response.s2c
    s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 1, 42
    s2c.connAESKey, s2c.keepAliveInterval = "0123456789ABCDEF", 10
    return response.SerializeToString()


def _page_reply(rows: int, next_key: str | None, *, skip: int = 0) -> bytes:
    """A page of ``rows`` rows, ``skip`` rows below the newest, so each page of a walk is older
    than the one before (a walk that makes no progress ends for that reason first)."""
    response = Qot_GetShortInterest_pb2.Response(retType=0)
    for n in range(skip, skip + rows):
        item = response.s2c.usItemList.add()
        item.timestamp = 1_760_000_000 - n * 86_400
        item.timestampStr = (dt.date(2025, 10, 9) - dt.timedelta(days=n)).isoformat()
        item.sharesShort = 1_000 + n
    if next_key is not None:
        response.s2c.nextKey = next_key
    return response.SerializeToString()


@contextlib.asynccontextmanager
async def scripted_pages(pages: list[Page]) -> AsyncIterator[tuple[str, int, list[str | None]]]:
    """A peer that answers the n-th short-interest request with ``pages[n]`` (the last one again
    after that). Yields host, port and the nextKey of every request it received (None: none)."""
    asked: list[str | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    if frame.proto_id == ProtoId.INIT_CONNECT:
                        body = _init_connect_reply()
                    elif frame.proto_id == ProtoId.GET_SHORT_INTEREST:
                        c2s = Qot_GetShortInterest_pb2.Request.FromString(frame.body).c2s
                        asked.append(c2s.nextKey if c2s.HasField("nextKey") else None)
                        rows, key = pages[min(len(asked), len(pages)) - 1]
                        body = _page_reply(rows, key, skip=rows * (len(asked) - 1))
                    else:
                        continue
                    writer.write(encode_frame(frame.proto_id, frame.serial, body))
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1], asked
    finally:
        server.close()
        await server.wait_closed()


# -- paging.md: next_key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [["A", "A"], ["A", "B", "A"]],
    ids=["the-same-key-at-once", "a-key-seen-two-pages-back"],
)
async def test_a_next_key_seen_before_stops_the_walk_with_a_protocol_error(
    keys: list[str],
) -> None:
    """paging.md: "If OpenD ever sent the same key twice, the walk stops with a ProtocolError"."""
    pages: list[Page] = [(2, key) for key in keys]
    async with (
        scripted_pages(pages) as (host, port, asked),
        Client(host, port, rate_limit=None, timeout=5) as client,
    ):
        got: list[str] = []

        async def walk() -> None:
            async with asyncio.timeout(10):
                async for page in client.iter_short_interest("US.AAPL", num=2):
                    got.append(page.next_key)

        with pytest.raises(ProtocolError, match="again"):
            await walk()
        assert got == keys
        # Every key was asked for once, the repeated one never.
        assert asked == [None, *keys[:-1]]

        del asked[:]
        with pytest.raises(ProtocolError, match="again"):
            async with asyncio.timeout(10):
                await client.fetch_short_interest("US.AAPL", num=2)
        assert asked == [None, *keys[:-1]]


async def test_a_reply_without_next_key_is_the_last_page() -> None:
    """paging.md: "A reply with no key at all is also treated as the last page"."""
    async with (
        scripted_pages([(3, None)]) as (host, port, asked),
        Client(host, port, rate_limit=None, timeout=5) as client,
    ):
        page = await client.get_short_interest("US.AAPL", num=3)
        assert page.next_key == "-1"
        assert not page.has_more
        assert page.us.attrs["next_key"] == "-1"

        pages = [p async for p in client.iter_short_interest("US.AAPL", num=3)]
        assert [len(p) for p in pages] == [3]
        frame = await client.fetch_short_interest("US.AAPL", num=3)
        assert len(frame) == 3
        assert frame.attrs["next_key"] == "-1"
    assert asked == [None, None, None]


# -- errors.md: timeouts ------------------------------------------------------------------------


async def test_a_per_call_timeout_longer_than_the_clients_is_honoured() -> None:
    """errors.md: ``timeout=`` on a call is "the same, for this call only", longer or shorter."""
    async with serving() as sim, client_of(sim, timeout=0.1) as client:
        sim.faults = Faults(reply_delay=0.4)
        # The client's own 0.1 s fails the slow reply...
        with pytest.raises(RequestTimeoutError):
            await client.get_short_interest("US.AAPL", num=1)
        # ...a longer per-call timeout outlasts it, in every call that takes one.
        page = await client.get_short_interest("US.AAPL", num=1, timeout=5)
        assert len(page) == 1
        page = await client.get_short_interest("US.AAPL", num=1, timeout=None)
        assert len(page) == 1
        async for page in client.iter_short_interest("US.AAPL", num=1, timeout=5):
            assert len(page) == 1
            break
        sim.add_symbol("US.TWO", rows=_rows("2025-03-03", "2025-02-28"))
        frame = await client.fetch_short_interest("US.TWO", timeout=5)
        assert frame_dates(frame) == ["2025-03-03", "2025-02-28"]


async def test_a_per_call_timeout_shorter_than_the_clients_is_honoured() -> None:
    async with serving() as sim, client_of(sim, timeout=5) as client:
        sim.faults = Faults(reply_delay=0.5)
        with pytest.raises(RequestTimeoutError):
            await client.get_short_interest("US.AAPL", num=1, timeout=0.1)
        with pytest.raises(RequestTimeoutError):
            await client.fetch_short_interest("US.AAPL", timeout=0.1)


# -- errors.md: the documented defaults ---------------------------------------------------------


def test_the_documented_defaults() -> None:
    """errors.md: timeout 12 s, connect_timeout 10 s, retries 3, reconnect_delay (0.1, 5)."""
    client = Client()
    assert client.timeout == 12.0
    assert client.connect_timeout == 10.0
    assert client.retries == 3
    assert client.reconnect_delay == (0.1, 5.0)
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(Client).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    assert defaults["timeout"] == 12.0
    assert defaults["connect_timeout"] == 10.0
    assert defaults["retries"] == 3


async def test_a_request_is_resent_three_times_by_default() -> None:
    """errors.md: "A call resends up to retries times (default 3) before raising"."""
    async with serving(faults=Faults(drop_after=0)) as sim:
        async with client_of(sim, reconnect_delay=(0.01, 0.02)) as client:
            assert client.retries == 3
            with pytest.raises(ConnectionLostError):
                await client.get_short_interest("US.AAPL", num=1)
        assert sim.stats.dropped == 4


@contextlib.asynccontextmanager
async def hanging_up() -> AsyncIterator[tuple[int, list[int]]]:
    """A port where a TCP connect succeeds and the peer hangs up at once; yields the port and a
    list that grows by one per accepted connection."""
    accepted: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


async def test_async_with_tries_to_connect_once() -> None:
    """errors.md: ``async with aiomoomoo.Client(...)`` "tries once" and raises ConnectError."""
    async with hanging_up() as (port, accepted):
        with pytest.raises(ConnectError):
            async with Client("127.0.0.1", port, retries=3, reconnect_delay=(0.01, 0.01)):
                pass
        assert len(accepted) == 1
        client = Client("127.0.0.1", port, retries=3, reconnect_delay=(0.01, 0.01))
        with pytest.raises(ConnectError):
            await client.connect()
        await client.close()
        assert len(accepted) == 2


async def test_a_connect_error_is_a_connection_error_and_a_moomoo_error() -> None:
    """errors.md: ``ConnectError (also a ConnectionError)``, under MoomooError."""
    async with serving() as sim:
        port = sim.port
    with pytest.raises(ConnectionError) as info:
        async with Client("127.0.0.1", port):
            pass
    assert isinstance(info.value, ConnectError)
    assert isinstance(info.value, MoomooError)
    assert issubclass(ConnectError, ConnectionError)


# -- paging.md: since ---------------------------------------------------------------------------

UNDATED = None


def _rows(*dates: str | None) -> list[UsRow]:
    """US rows on ``dates`` (newest first; None: a row OpenD sent without a date)."""
    rows = []
    for n, day in enumerate(dates):
        stamp = (
            int(pd.Timestamp(day, tz="America/New_York").timestamp()) if day is not None else None
        )
        rows.append(UsRow(stamp, day, 1_000 + n, 1.5, 10_000, 0.1, 100.0 + n, 99.0 + n))
    return rows


# Pages of two: [03-10, undated] [03-07, 03-03] [02-28, 02-21] [02-14].
SINCE_ROWS = _rows(
    "2025-03-10", UNDATED, "2025-03-07", "2025-03-03", "2025-02-28", "2025-02-21", "2025-02-14"
)
#: What ``since`` 2025-03-03 keeps: its own day and the undated row, nothing older.
SINCE_KEPT = ["2025-03-10", "<NA>", "2025-03-07", "2025-03-03"]
SINCE_FORMS: dict[str, object] = {
    "str": "2025-03-03",
    "date": dt.date(2025, 3, 3),
    "datetime-late-in-the-day": dt.datetime(2025, 3, 3, 23, 59, 59),
}


@pytest.mark.parametrize("since", SINCE_FORMS.values(), ids=list(SINCE_FORMS))
async def test_since_keeps_its_own_day_and_undated_rows_in_fetch_and_iter(since: object) -> None:
    """paging.md: the walk stops after the first page that reaches rows *older* than since, and
    fetch keeps "exactly the rows from since on"; undated rows are not older than anything."""
    async with serving() as sim:
        sim.add_symbol("US.SINCE", rows=SINCE_ROWS)
        async with client_of(sim) as client:
            frame = await client.fetch_short_interest("US.SINCE", num=2, since=since)  # type: ignore[arg-type]
            assert frame_dates(frame) == SINCE_KEPT
            # Page 2 ends exactly on the date, which is not older: page 3 is fetched too.
            assert sim.stats.requests == 3

            pages = [
                page
                async for page in client.iter_short_interest("US.SINCE", num=2, since=since)  # type: ignore[arg-type]
            ]
            assert [frame_dates(page.frame) for page in pages] == [
                ["2025-03-10", "<NA>"],
                ["2025-03-07", "2025-03-03"],
                ["2025-02-28", "2025-02-21"],
            ]
            assert pages[-1].has_more


async def test_an_undated_last_row_does_not_end_the_walk() -> None:
    async with serving() as sim:
        sim.add_symbol("US.UNDATED", rows=_rows("2025-03-10", UNDATED, "2025-03-07", UNDATED))
        async with client_of(sim) as client:
            pages = [
                p async for p in client.iter_short_interest("US.UNDATED", num=2, since="2025-03-08")
            ]
    assert [len(page) for page in pages] == [2, 2]
    assert not pages[-1].has_more


@pytest.mark.parametrize("since", SINCE_FORMS.values(), ids=list(SINCE_FORMS))
async def test_since_keeps_its_own_day_and_undated_rows_in_many(since: object) -> None:
    async with serving() as sim:
        sim.add_symbol("US.SINCE", rows=SINCE_ROWS)
        sim.add_symbol("US.OTHER", rows=_rows("2025-03-04", "2025-03-03", "2025-03-02"))
        async with client_of(sim) as client:
            frame = await client.fetch_short_interest_many(
                ["US.SINCE", "US.OTHER"],
                since=since,  # type: ignore[arg-type]
                num=2,
            )
            results = {
                result.code: result
                async for result in client.iter_short_interest_many(
                    ["US.SINCE", "US.OTHER"],
                    since=since,  # type: ignore[arg-type]
                    num=2,
                )
            }
    assert frame_dates(frame) == [*SINCE_KEPT, "2025-03-04", "2025-03-03"]
    assert frame["code"].tolist() == ["US.SINCE"] * 4 + ["US.OTHER"] * 2
    assert frame_dates(results["US.SINCE"].frame) == SINCE_KEPT
    assert results["US.SINCE"].pages == 3
    assert frame_dates(results["US.OTHER"].frame) == ["2025-03-04", "2025-03-03"]


@pytest.fixture
def opend_with_since_rows() -> Iterator[OpenDSimulator]:
    with SimulatorThread(quota=None) as simulator:
        # Added before any request reaches the simulator's thread.
        simulator.add_symbol("US.SINCE", rows=SINCE_ROWS)
        yield simulator


def test_since_keeps_its_own_day_and_undated_rows_in_the_cli(
    opend_with_since_rows: OpenDSimulator, tmp_path: Path
) -> None:
    sim = opend_with_since_rows
    path = tmp_path / "since.csv"
    where = ["--host", sim.host, "--port", str(sim.port)]
    options = ["--since", "2025-03-03", "--num", "2", "--format", "csv", "-o", str(path)]
    status = main(["short-interest", *where, "US.SINCE", *options])
    assert status == 0
    frame = pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")), dtype={"timestamp_str": str})
    assert frame["timestamp_str"].fillna("<NA>").tolist() == SINCE_KEPT
    assert sim.stats.requests == 3


# -- errors.md / Client docstring: max_body_size ------------------------------------------------


async def test_max_body_size_is_honoured_to_the_byte() -> None:
    """Client: "the largest reply body accepted, in bytes; a larger announced size is a protocol
    error"."""
    async with serving() as sim:
        async with connected(sim) as raw:
            serial = await raw.send(
                ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.US, "AAPL", num=5)
            )
            reply = await raw.receive()
            assert reply.serial == serial
        size = len(reply.body)
        async with client_of(sim, max_body_size=size) as client:
            assert len(await client.get_short_interest("US.AAPL", num=5)) == 5
        # errors.md, malformed replies: an oversized body is resent like a lost connection,
        # and fails with ProtocolError once it keeps coming; retries=0 makes that the first.
        async with client_of(sim, max_body_size=size - 1, retries=0) as client:
            with pytest.raises(ProtocolError, match=f"{size}-byte body, over the {size - 1}-byte"):
                await client.get_short_interest("US.AAPL", num=5)


# -- cli.md: --concurrency ----------------------------------------------------------------------

DELAY = 0.2


@pytest.mark.parametrize("concurrency", [1, 2])
def test_the_cli_walks_at_most_concurrency_symbols_at_once(concurrency: int) -> None:
    """``--concurrency N``: "symbols fetched at once". With every reply held DELAY seconds, a
    walk's requests are at least DELAY apart, so the requests that arrive within DELAY / 2 of
    each other belong to as many walks as run at once."""
    codes = ["US.C1", "US.C2", "US.C3"]
    with SimulatorThread(quota=None, faults=Faults(reply_delay=DELAY)) as sim:
        for code in codes:
            sim.add_symbol(code, rows=_rows("2025-03-03", "2025-02-28", "2025-02-21"))
        where = ["--host", sim.host, "--port", str(sim.port)]
        options = ["--num", "2", "--format", "csv", "-o", os.devnull]
        status = main(
            ["short-interest", *where, *codes, *options, "--concurrency", str(concurrency)]
        )
        accepted = list(sim.stats.accepted_at)
    assert status == 0
    assert len(accepted) == 2 * len(codes)
    assert busiest_window(accepted, DELAY / 2) == concurrency
