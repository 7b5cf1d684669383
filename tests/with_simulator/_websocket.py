"""A minimal WebSocket client of the simulator, written from the packet layout alone.

It builds and parses packets with ``struct`` itself rather than with the simulator's helpers,
so a mistake there cannot hide behind the same mistake here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import struct
from collections.abc import AsyncIterator
from typing import NamedTuple, TypeVar

from google.protobuf.message import Message
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from aiomoomoo._proto import InitWebSocket_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._security import parse_code

from .conftest import PeerClosed, short_interest_request

M = TypeVar("M", bound=Message)

REPLY_TIMEOUT = 5.0
REQUEST = struct.Struct(">8sIQ")
REPLY = struct.Struct(">8sIQi20s")
MAGIC = b"ft-v1.0\x00"


class Packet(NamedTuple):
    """One reply or push as it arrived."""

    cmd: int
    section: int
    error: int
    error_text: str
    body: bytes


def request_packet(cmd: int, section: int, body: bytes) -> bytes:
    return REQUEST.pack(MAGIC, cmd, section) + body


def parse_reply(data: bytes) -> Packet:
    magic, cmd, section, error, text = REPLY.unpack_from(data)
    assert magic == MAGIC, f"reply starts with {magic!r}"
    return Packet(cmd, section, error, text.rstrip(b"\0").decode("ascii"), data[REPLY.size :])


class WsClient:
    """One WebSocket connection that sends requests and reads replies and pushes."""

    # Above 2**32, so a transport that kept only 32 bits of the section would be caught.
    _sections = itertools.count(2**32 + 1)

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.skipped: list[Packet] = []
        self.conn_id = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, host: str, port: int) -> AsyncIterator[WsClient]:
        async with connect(f"ws://{host}:{port}/", compression=None) as connection:
            yield cls(connection)

    async def send(self, cmd: int, body: bytes | Message, *, section: int | None = None) -> int:
        section = next(self._sections) if section is None else section
        if isinstance(body, Message):
            body = body.SerializeToString()
        await self.connection.send(request_packet(cmd, section, body))
        return section

    async def receive(self, timeout: float = REPLY_TIMEOUT) -> Packet:
        """The next packet; :class:`PeerClosed` once the simulator closed the connection."""
        async with asyncio.timeout(timeout):
            try:
                data = await self.connection.recv()
            except ConnectionClosed as exc:
                raise PeerClosed(f"closed: {exc}") from exc
        assert isinstance(data, bytes), f"text message {data!r}"
        return parse_reply(data)

    async def request(
        self, cmd: int, message: Message | bytes, response_type: type[M]
    ) -> tuple[Packet, M]:
        """Send and return the reply carrying the same section, with its body decoded."""
        section = await self.send(cmd, message)
        while True:
            packet = await self.receive()
            if packet.section == section:
                assert packet.cmd == cmd
                response = response_type()
                response.ParseFromString(packet.body)
                return packet, response
            self.skipped.append(packet)

    async def login(self, key: str | None) -> tuple[Packet, InitWebSocket_pb2.Response]:
        request = InitWebSocket_pb2.Request()
        request.c2s.websocketKey = hashlib.md5(key.encode()).hexdigest() if key else ""
        request.c2s.programmingLanguage = "Python"
        packet, response = await self.request(1, request, InitWebSocket_pb2.Response)
        if packet.error == 0:
            self.conn_id = response.s2c.connID
        return packet, response

    async def short_interest(
        self, code: str, *, next_key: str | None = None, num: int | None = None
    ) -> Qot_GetShortInterest_pb2.Response:
        security = parse_code(code)
        request = short_interest_request(
            security.market, security.symbol, next_key=next_key, num=num
        )
        packet, response = await self.request(3249, request, Qot_GetShortInterest_pb2.Response)
        assert packet.error == 0, packet
        return response

    async def walk(self, code: str, *, num: int) -> list[Qot_GetShortInterest_pb2.Response]:
        """Every page of ``code``, following ``nextKey`` to ``"-1"``."""
        pages: list[Qot_GetShortInterest_pb2.Response] = []
        next_key: str | None = None
        while next_key != "-1":
            page = await self.short_interest(code, next_key=next_key, num=num)
            assert page.retType == 0, page.retMsg
            assert len(pages) < 1000, "nextKey never reached -1"
            pages.append(page)
            next_key = page.s2c.nextKey
        return pages


@contextlib.asynccontextmanager
async def logged_in(host: str, port: int | None, key: str | None = None) -> AsyncIterator[WsClient]:
    """A :class:`WsClient` on ``host:port`` that has logged in with ``key``."""
    assert port is not None, "the simulator serves no WebSocket"
    async with WsClient.connect(host, port) as client:
        packet, response = await client.login(key)
        assert packet.error == 0, (packet, response.retMsg)
        yield client
