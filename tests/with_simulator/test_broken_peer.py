"""Peers that break the protocol, and the review's edge cases around them.

A scripted server answers InitConnect the way it is told to and then misbehaves; the client must
report each case as what it is, promptly; a broken stream is dropped like a lost line, and only a
peer that keeps breaking it fails the request with a `ProtocolError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from aiomoomoo import (
    Client,
    ConnectError,
    ConnectionLostError,
    ProtocolError,
)
from aiomoomoo._proto import InitConnect_pb2
from aiomoomoo._wire import HEADER_SIZE, FrameDecoder, ProtoId, encode_frame
from aiomoomoo.testing import Faults

from ._fixtures import client_of, serving

pytestmark = pytest.mark.anyio

Reply = Callable[[int, int, bytes], bytes | None]


def init_reply(*, with_s2c: bool = True) -> bytes:
    response = InitConnect_pb2.Response(retType=0)
    if with_s2c:
        s2c = response.s2c
        s2c.serverVer, s2c.loginUserID, s2c.connID = 1, 1, 42
        s2c.connAESKey, s2c.keepAliveInterval = "0123456789ABCDEF", 10
    return response.SerializeToString()


@asynccontextmanager
async def scripted(reply: Reply) -> AsyncIterator[tuple[str, int, list[int]]]:
    """A server that answers each frame with ``reply(proto_id, serial, body)`` (None: silence).

    Yields host, port and the proto ids it received, in order.
    """
    received: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    received.append(frame.proto_id)
                    answer = reply(frame.proto_id, frame.serial, frame.body)
                    if answer is not None:
                        writer.write(answer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1], received
    finally:
        server.close()
        await server.wait_closed()


def corrupt_short_interest(proto_id: int, serial: int, body: bytes) -> bytes:
    if proto_id == ProtoId.INIT_CONNECT:
        return encode_frame(proto_id, serial, init_reply())
    frame = bytearray(encode_frame(proto_id, serial, b"\x08\x00"))
    frame[HEADER_SIZE - 9] ^= 0xFF  # a byte of the SHA-1
    return bytes(frame)


async def test_a_peer_that_keeps_corrupting_is_a_protocol_error_after_the_retries() -> None:
    # Issue 9 item 5: one corrupt frame is a broken connection, resent on a new one; only a
    # peer that corrupts every time ends the request, with the ProtocolError that names why.
    async with (
        scripted(corrupt_short_interest) as (host, port, received),
        Client(host, port, rate_limit=None, retries=3, reconnect_delay=(0.01, 0.02)) as client,
    ):
        with pytest.raises(ProtocolError, match="SHA-1 mismatch") as info:
            await client.get_short_interest("US.AAPL")
        assert not isinstance(info.value, ConnectionLostError)
    assert received.count(ProtoId.GET_SHORT_INTEREST) == 4


async def test_an_init_connect_reply_without_connection_data_is_refused() -> None:
    def reply(proto_id: int, serial: int, body: bytes) -> bytes:
        return encode_frame(proto_id, serial, init_reply(with_s2c=False))

    async with scripted(reply) as (host, port, _):
        client = Client(host, port)
        with pytest.raises(ConnectError, match="sent no connection data"):
            await client.connect()
        await client.close()


async def test_a_silent_tcp_accept_is_not_blamed_on_init_connect() -> None:
    async with scripted(lambda *_: None) as (host, port, _):
        client = Client(host, port, connect_timeout=0.2)
        with pytest.raises(ConnectError, match=r"did not complete InitConnect within 0\.2 s"):
            await client.connect()
        await client.close()


async def test_unanswered_keepalives_do_not_pile_up() -> None:
    async with (
        serving(faults=Faults(answer_keepalive=False)) as sim,
        client_of(sim, keepalive_interval=0.02) as client,
    ):
        connection = client._connection
        assert connection is not None
        # Pushes keep the link alive while the KeepAlives go unanswered.
        for _ in range(10):
            sim.push_notify()
            await asyncio.sleep(0.02)
        assert sim.stats.keepalives >= 5
        assert len(connection._pending) <= 1


async def test_cancelling_close_reaches_its_caller() -> None:
    async with serving() as sim:
        client = Client(sim.host, sim.port, reconnect_delay=(5.0, 5.0), retries=5)
        await client.connect()
        await sim.close()  # the link drops and the client starts reconnecting, slowly
        await asyncio.sleep(0.05)
        assert client._reconnector is not None
        closing = asyncio.ensure_future(client.close())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert closing.cancelled()
        await client.close()
