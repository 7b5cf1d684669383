"""Peers that break the protocol: each case is reported as what it is, promptly.

A malformed reply (a corrupt SHA-1, the wrong proto id, an undecodable body, text that is not
UTF-8) is a broken stream: the connection is dropped like a lost line and the request resent on a
new one, so one bad frame fails no walk; only a peer that keeps breaking it fails the request
with the `ProtocolError` that names why. A broken InitConnect is a prompt `ConnectError`.
Two servers misbehave here: `_hostile`'s scriptable gateway and a bare scripted one below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from aiomoomoo import Client, ConnectError, ConnectionLostError, ProtocolError
from aiomoomoo._proto import InitConnect_pb2
from aiomoomoo._wire import HEADER_SIZE, FrameDecoder, ProtoId, encode_frame

from ._fixtures import frame_dates
from ._hostile import GUARD, Fault, Request, client_for, dates_of, hostile

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


# -- replies to requests ---------------------------------------------------------------------------


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


async def test_a_peer_that_keeps_corrupting_is_a_protocol_error_after_the_retries() -> None:
    # One corrupt frame is a broken connection, resent on a new one; only a peer that corrupts
    # every time ends the request, with the ProtocolError that names why.
    async with (
        scripted(corrupt_short_interest) as (host, port, received),
        Client(host, port, rate_limit=None, retries=3, reconnect_delay=(0.01, 0.02)) as client,
    ):
        with pytest.raises(ProtocolError, match="SHA-1 mismatch") as info:
            await client.get_short_interest("US.AAPL")
        assert not isinstance(info.value, ConnectionLostError)
    assert received.count(ProtoId.GET_SHORT_INTEREST) == 4


# -- InitConnect -----------------------------------------------------------------------------------


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
