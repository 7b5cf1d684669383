"""Fixtures for tests that talk to the OpenD simulator over real loopback sockets.

:class:`RawClient` is deliberately dumb: frames in, frames out, built only on ``aiomoomoo._wire``
and the generated protobuf classes, so simulator tests do not depend on the client they exist
to test.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from aiomoomoo._proto import (
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo._security import parse_code
from aiomoomoo._wire import Frame, FrameDecoder, ProtoFmt, ProtoId, encode_frame
from aiomoomoo.testing import OpenDSimulator

M = TypeVar("M", bound=Message)

#: Generous: the simulator answers in milliseconds, this only keeps a broken test from hanging.
REPLY_TIMEOUT = 5.0


class PeerClosed(Exception):
    """The simulator closed the connection."""


def short_interest_request(
    market: int, symbol: str, *, next_key: str | None = None, num: int | None = None
) -> Qot_GetShortInterest_pb2.Request:
    request = Qot_GetShortInterest_pb2.Request()
    request.c2s.security.market = market
    request.c2s.security.code = symbol
    if next_key is not None:
        request.c2s.nextKey = next_key
    if num is not None:
        request.c2s.num = num
    return request


def decode(frame: Frame, message_type: type[M]) -> M:
    """Parse ``frame``'s body as ``message_type`` in the format its header names."""
    message = message_type()
    if frame.fmt == ProtoFmt.JSON:
        json_format.Parse(frame.body.decode("utf-8"), message)
    else:
        message.ParseFromString(frame.body)
    return message


class RawClient:
    """One TCP connection to the simulator that sends and receives whole frames.

    ``read_sizes`` records the size of every socket read, so tests can see how replies were cut
    up; ``skipped`` collects frames :meth:`request` passed over while waiting for its reply.
    """

    _serials = itertools.count(1000)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.read_sizes: list[int] = []
        self.skipped: list[Frame] = []
        self.conn_id = 0
        self._decoder = FrameDecoder()
        self._frames: collections.deque[Frame] = collections.deque()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, host: str, port: int) -> AsyncIterator[RawClient]:
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        try:
            yield client
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    # -- frames -----------------------------------------------------------------------------

    async def send(
        self,
        proto_id: int,
        message: Message,
        *,
        serial: int | None = None,
        fmt: int = ProtoFmt.PROTOBUF,
    ) -> int:
        """Send ``message`` as one frame; return its serial."""
        serial = next(self._serials) if serial is None else serial
        if fmt == ProtoFmt.JSON:
            body = json_format.MessageToJson(message).encode("utf-8")
        else:
            body = message.SerializeToString()
        self.writer.write(encode_frame(proto_id, serial, body, fmt=fmt))
        await self.writer.drain()
        return serial

    async def receive(self, timeout: float = REPLY_TIMEOUT) -> Frame:
        """The next frame from the simulator; :class:`PeerClosed` if it closed the connection."""
        async with asyncio.timeout(timeout):
            while not self._frames:
                try:
                    data = await self.reader.read(65536)
                except ConnectionError as exc:
                    raise PeerClosed("the simulator reset the connection") from exc
                if not data:
                    raise PeerClosed("the simulator closed the connection")
                self.read_sizes.append(len(data))
                self._frames.extend(self._decoder.feed(data))
        return self._frames.popleft()

    async def request(
        self,
        proto_id: int,
        message: Message,
        response_type: type[M],
        *,
        fmt: int = ProtoFmt.PROTOBUF,
    ) -> M:
        """Send ``message`` and return the reply with the same proto id and serial, decoded."""
        serial = await self.send(proto_id, message, fmt=fmt)
        while True:
            frame = await self.receive()
            if frame.proto_id == proto_id and frame.serial == serial:
                assert frame.fmt == fmt, f"reply format {frame.fmt}, request format {fmt}"
                return decode(frame, response_type)
            self.skipped.append(frame)

    # -- protocols --------------------------------------------------------------------------

    async def init_connect(self, *, fmt: int = ProtoFmt.PROTOBUF) -> InitConnect_pb2.Response:
        request = InitConnect_pb2.Request()
        c2s = request.c2s
        c2s.clientVer = 300
        c2s.clientID = "aiomoomoo-tests"
        c2s.recvNotify = True
        c2s.packetEncAlgo = -1
        c2s.pushProtoFmt = 0
        c2s.programmingLanguage = "Python"
        response = await self.request(
            ProtoId.INIT_CONNECT, request, InitConnect_pb2.Response, fmt=fmt
        )
        if response.retType == 0:
            self.conn_id = response.s2c.connID
        return response

    async def keep_alive(self) -> KeepAlive_pb2.Response:
        request = KeepAlive_pb2.Request()
        request.c2s.time = 1_700_000_000
        return await self.request(ProtoId.KEEP_ALIVE, request, KeepAlive_pb2.Response)

    async def global_state(self) -> GetGlobalState_pb2.Response:
        request = GetGlobalState_pb2.Request()
        request.c2s.userID = 0
        return await self.request(ProtoId.GET_GLOBAL_STATE, request, GetGlobalState_pb2.Response)

    async def short_interest(
        self,
        code: str,
        *,
        next_key: str | None = None,
        num: int | None = None,
        fmt: int = ProtoFmt.PROTOBUF,
    ) -> Qot_GetShortInterest_pb2.Response:
        security = parse_code(code)
        request = short_interest_request(
            security.market, security.symbol, next_key=next_key, num=num
        )
        return await self.request(
            ProtoId.GET_SHORT_INTEREST, request, Qot_GetShortInterest_pb2.Response, fmt=fmt
        )

    async def walk(
        self, code: str, *, num: int | None = None
    ) -> list[Qot_GetShortInterest_pb2.Response]:
        """Every page of ``code``'s history, following ``nextKey`` until ``"-1"``."""
        pages: list[Qot_GetShortInterest_pb2.Response] = []
        next_key: str | None = None
        while next_key != "-1":
            page = await self.short_interest(code, next_key=next_key, num=num)
            assert page.retType == 0, page.retMsg
            assert page.s2c.HasField("nextKey"), f"page {len(pages)} of {code} has no nextKey"
            assert len(pages) < 1000, "nextKey never reached -1"
            pages.append(page)
            next_key = page.s2c.nextKey
        return pages


@contextlib.asynccontextmanager
async def connected(simulator: OpenDSimulator) -> AsyncIterator[RawClient]:
    """A :class:`RawClient` on ``simulator`` that has completed InitConnect."""
    async with RawClient.connect(simulator.host, simulator.port) as client:
        response = await client.init_connect()
        assert response.retType == 0, response.retMsg
        yield client


@pytest.fixture
async def simulator() -> AsyncIterator[OpenDSimulator]:
    """A started simulator without a quota; tests may change its ``faults`` and ``quota``."""
    async with OpenDSimulator(quota=None) as sim:
        yield sim


@pytest.fixture
async def raw_client(simulator: OpenDSimulator) -> AsyncIterator[RawClient]:
    """A :class:`RawClient` on the ``simulator`` fixture, past InitConnect."""
    async with connected(simulator) as raw:
        yield raw
