"""Opening a connection without sockets: TCP connect and InitConnect against a scripted gateway.

The loop's ``create_connection`` is replaced by one that hands the connection a fake transport;
the "gateway" answers each InitConnect written to it as the test says. Every way the handshake
can fail must end in one `ConnectError` naming the stage, with the cause chained, and leave no
connection open.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from unittest import mock

import pytest

from aiomoomoo import ConnectError, ProtocolError, ServerError
from aiomoomoo._connection import Connection, State
from aiomoomoo._handshake import MAX_SERVER_KEEPALIVE, open_connection
from aiomoomoo._proto import InitConnect_pb2
from aiomoomoo._wire import Frame, FrameDecoder, ProtoId, encode_frame

from ._fakes import FakeTransport

pytestmark = pytest.mark.anyio

#: How the scripted gateway answers one InitConnect frame: the bytes to send back, or None.
Answer = Callable[[Frame], bytes | None]


def accepted(keepalive: int = 10) -> Answer:
    def answer(frame: Frame) -> bytes:
        reply = InitConnect_pb2.Response(retType=0)
        s2c = reply.s2c
        s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 7, 42
        s2c.connAESKey, s2c.keepAliveInterval = "0123456789abcdef", keepalive
        return encode_frame(ProtoId.INIT_CONNECT, frame.serial, reply.SerializeToString())

    return answer


class Gateway:
    """Stands in for TCP: refuses, never accepts, or accepts and answers InitConnect."""

    def __init__(self, answer: Answer | None = None, *, refuse: OSError | None = None) -> None:
        self.answer = answer
        self.refuse = refuse
        self.hang = answer is None and refuse is None
        self.transport = FakeTransport()
        self.connection: Connection | None = None
        self.requests: list[InitConnect_pb2.Request] = []
        self.address: tuple[str, int] | None = None
        self._decoder = FrameDecoder()

    async def create_connection(
        self, factory: Callable[[], Connection], host: str, port: int, **_: Any
    ) -> tuple[FakeTransport, Connection]:
        self.address = (host, port)
        if self.refuse is not None:
            raise self.refuse
        if self.hang:
            await asyncio.Event().wait()
        connection = self.connection = factory()
        self.transport.write = self._received  # type: ignore[method-assign]
        connection.connection_made(self.transport)
        return self.transport, connection

    def _received(self, data: Any) -> None:
        self.transport.sent += data
        for frame in self._decoder.feed(bytes(data)):
            assert frame.proto_id == ProtoId.INIT_CONNECT
            self.requests.append(InitConnect_pb2.Request.FromString(frame.body))
            reply = self.answer(frame) if self.answer is not None else None
            if reply is not None and self.connection is not None:
                asyncio.get_running_loop().call_soon(self.connection.data_received, reply)


@asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[Gateway]:
    loop = asyncio.get_running_loop()
    with mock.patch.object(loop, "create_connection", gateway.create_connection):
        yield gateway


async def test_an_accepted_init_connect_gives_a_ready_connection_with_opend_s_answer() -> None:
    async with serving(Gateway(accepted(keepalive=10))) as gateway:
        connection = await open_connection("gw", 4000, timeout=1.0, client_id="my-bot")
    assert gateway.address == ("gw", 4000)
    (request,) = gateway.requests
    assert request.c2s.clientID == "my-bot"
    assert request.c2s.recvNotify
    assert connection.state is State.READY
    assert connection.info is not None
    assert (connection.info.conn_id, connection.info.server_version) == (42, 1011)
    assert connection.info.login_user_id == 7
    assert connection.info.keepalive_interval == 10.0
    assert connection.info.encryption == "none"
    assert connection.replies == 0  # InitConnect's own reply proves nothing about requests
    connection.close()
    assert gateway.transport.aborted


@pytest.mark.parametrize(
    ("advertised", "override", "interval"),
    [(100, None, MAX_SERVER_KEEPALIVE), (0, None, 1.0), (10, 3.0, 3.0), (100, 30.0, 30.0)],
)
async def test_the_keepalive_interval_is_opend_s_within_bounds_unless_overridden(
    advertised: int, override: float | None, interval: float
) -> None:
    async with serving(Gateway(accepted(keepalive=advertised))):
        connection = await open_connection(
            "gw", 1, timeout=1.0, client_id="t", keepalive_interval=override
        )
    assert connection.info is not None
    assert connection.info.keepalive_interval == interval
    connection.close()


async def test_a_refused_tcp_connect_is_a_connect_error_with_a_hint_and_its_cause() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    async with serving(Gateway(refuse=refused)):
        with pytest.raises(ConnectError) as caught:
            await open_connection("127.0.0.1", 1, timeout=1.0, client_id="t")
    message = str(caught.value)
    assert message.startswith("cannot connect to OpenD at 127.0.0.1:1: Connection refused.")
    assert "Is OpenD running and logged in?" in message
    assert "aiomoomoo short-interest --demo" in message
    assert caught.value.__cause__ is refused


async def test_a_connect_that_never_completes_times_out_naming_the_stage() -> None:
    async with serving(Gateway()):
        with pytest.raises(ConnectError, match=r"^OpenD at gw:1 did not accept the connection "):
            await open_connection("gw", 1, timeout=0.02, client_id="t")


async def test_a_gateway_silent_after_connect_times_out_in_init_connect_and_is_closed() -> None:
    async with serving(Gateway(lambda frame: None)) as gateway:
        with pytest.raises(ConnectError) as caught:
            await open_connection("gw", 1, timeout=0.02, client_id="t")
    assert str(caught.value) == "OpenD at gw:1 did not complete InitConnect within 0.02 s"
    assert gateway.transport.aborted
    assert gateway.connection is not None
    assert gateway.connection.state is State.LOST


async def test_a_refusal_is_a_connect_error_caused_by_the_server_error() -> None:
    def refuse(frame: Frame) -> bytes:
        reply = InitConnect_pb2.Response(retType=-1, retMsg="client version too old")
        return encode_frame(ProtoId.INIT_CONNECT, frame.serial, reply.SerializeToString())

    async with serving(Gateway(refuse)) as gateway:
        with pytest.raises(ConnectError) as caught:
            await open_connection("gw", 1, timeout=1.0, client_id="t")
    assert str(caught.value).startswith("OpenD at gw:1 refused InitConnect: ")
    assert "client version too old" in str(caught.value)
    assert isinstance(caught.value.__cause__, ServerError)
    assert gateway.transport.aborted


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"\xff\xff not protobuf", id="undecodable"),
        pytest.param(InitConnect_pb2.Response(retType=0).SerializeToString(), id="no-s2c"),
    ],
)
async def test_a_malformed_reply_fails_at_once_not_at_the_timeout(reply: bytes) -> None:
    def answer(frame: Frame) -> bytes:
        return encode_frame(ProtoId.INIT_CONNECT, frame.serial, reply)

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with serving(Gateway(answer)) as gateway:
        with pytest.raises(ConnectError, match=r"^OpenD at gw:1 broke off InitConnect: ") as caught:
            await open_connection("gw", 1, timeout=30.0, client_id="t")
    assert loop.time() - started < 5.0
    assert isinstance(caught.value.__cause__, ProtocolError)
    assert gateway.transport.aborted


async def test_a_gateway_that_drops_right_after_its_reply_is_a_connect_error() -> None:
    gateway = Gateway(accepted())

    def reply_then_drop(frame: Frame) -> bytes | None:
        answer = accepted()(frame)
        assert answer is not None
        loop = asyncio.get_running_loop()
        assert gateway.connection is not None
        connection = gateway.connection
        loop.call_soon(connection.data_received, answer)
        loop.call_soon(connection.connection_lost, None)
        return None

    gateway.answer = reply_then_drop
    async with serving(gateway):
        with pytest.raises(
            ConnectError, match=r"^OpenD at gw:1 dropped the connection right after InitConnect$"
        ):
            await open_connection("gw", 1, timeout=1.0, client_id="t")


async def test_cancelling_the_connect_closes_the_half_open_connection() -> None:
    async with serving(Gateway(lambda frame: None)) as gateway:
        task = asyncio.ensure_future(open_connection("gw", 1, timeout=30.0, client_id="t"))
        for _ in range(5):  # connect and write InitConnect; its reply never comes
            await asyncio.sleep(0)
        assert len(gateway.requests) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert gateway.transport.aborted
    assert gateway.connection is not None
    assert gateway.connection.state is State.LOST
