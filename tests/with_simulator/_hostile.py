"""A scriptable hostile OpenD on loopback, for the tests of how the client survives one.

Every short-interest request is answered as a script says: a normal page, or a fault (a corrupt
SHA-1, the wrong proto id, an undecodable or non-UTF-8 body, silence, a trickle of bytes that
never completes a frame, a dropped connection, a stall of the whole connection). InitConnect can
misbehave the same ways. Built on the wire codec and the generated protobuf classes only, with
its own tiny histories, so it cannot share a bug with the client or the simulator; `client_for`
and the other helpers at the end are for the tests that aim a client at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from aiomoomoo import Client
from aiomoomoo._proto import InitConnect_pb2, KeepAlive_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._wire import HEADER_SIZE, Frame, FrameDecoder, ProtoId, encode_frame

Fault = Literal[
    "reply",
    "corrupt",
    "wrong_proto",
    "garbage",
    "bad_utf8_ret_msg",
    "bad_utf8_next_key",
    "bad_utf8_timestamp",
    "silent",
    "trickle",
    "drop",
    "stall",
]
InitFault = Literal["ok", "close_after", "wrong_proto", "garbage", "bad_utf8", "silent"]
_NOT_UTF8 = b"\xff\xfe bad"


@dataclass(frozen=True, slots=True)
class Request:
    """What the script is told about one short-interest request."""

    code: str
    next_key: str
    num: int
    connection: int  # 1 for the first connection the gateway accepted
    on_connection: int  # 1 for the first 3249 request on its connection
    overall: int  # 1 for the first 3249 request the gateway received


Script = Callable[[Request], Fault]


def dates_of(code: str, rows: int) -> list[str]:
    """The ``timestamp_str`` of every row the gateway serves for ``code``, newest first."""
    del code
    newest = dt.date(2026, 4, 30)
    return [(newest - dt.timedelta(days=7 * i)).isoformat() for i in range(rows)]


@dataclass
class HostileGateway:
    """The gateway's settings and what it saw; change ``script`` at any time."""

    script: Script = lambda request: "reply"
    init: InitFault = "ok"
    rows: int = 30
    keepalive_interval: int = 10
    answer_keepalive: bool = True
    stall: float = 0.0
    unknown: frozenset[str] = frozenset()
    refusals: dict[str, str] = field(default_factory=dict)
    """Codes whose requests are refused (retType -1) with this ``retMsg``; change at any time."""
    repeat: bool = False
    """Answer every page with the first page's rows and a fresh key ("k1", "k2", ...)."""
    bad_rows: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    """Rows served wrong: ``{(code, date): {field: value}}`` sets the protobuf fields of
    ``code``'s row of ``date`` (one of `dates_of`) to these values, None leaving a field out."""
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    processed_at: list[float] = field(default_factory=list)
    """Clock time at which each short-interest request was processed (served or refused)."""
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        on_connection = 0
        stalled_until = 0.0
        self._writers.add(writer)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    if frame.proto_id == ProtoId.INIT_CONNECT:
                        if not await self._init_connect(frame, writer):
                            return
                        continue
                    if frame.proto_id == ProtoId.KEEP_ALIVE:
                        if self.answer_keepalive:
                            reply = KeepAlive_pb2.Response(retType=0)
                            reply.s2c.time = int(time.time())
                            writer.write(_frame(frame, reply.SerializeToString()))
                        continue
                    on_connection += 1
                    request = self._describe(frame, number, on_connection)
                    self.requests.append(request)
                    fault = self.script(request)
                    if fault == "stall" and time.monotonic() >= stalled_until:
                        # The whole connection stops processing, then catches up at once.
                        stalled_until = time.monotonic() + self.stall
                    if time.monotonic() < stalled_until:
                        await asyncio.sleep(stalled_until - time.monotonic())
                        fault = "reply" if fault == "stall" else fault
                    self.processed_at.append(time.monotonic())
                    if not await self._answer(frame, request, fault, writer):
                        return
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _init_connect(self, frame: Frame, writer: asyncio.StreamWriter) -> bool:
        reply = InitConnect_pb2.Response(retType=0)
        s2c = reply.s2c
        s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 1, 7000 + self.connections
        s2c.connAESKey, s2c.keepAliveInterval = "0123456789ABCDEF", self.keepalive_interval
        body = reply.SerializeToString()
        match self.init:
            case "silent":
                return True
            case "wrong_proto":
                writer.write(encode_frame(ProtoId.KEEP_ALIVE, frame.serial, body))
            case "garbage":
                writer.write(_frame(frame, b"\xff\xff\xff\xff"))
            case "bad_utf8":
                failed = InitConnect_pb2.Response(retType=-1).SerializeToString()
                writer.write(_frame(frame, failed + b"\x12" + bytes([len(_NOT_UTF8)]) + _NOT_UTF8))
            case "close_after":
                writer.write(_frame(frame, body))
                await writer.drain()
                return False
            case _:
                writer.write(_frame(frame, body))
        return True

    def _describe(self, frame: Frame, connection: int, on_connection: int) -> Request:
        c2s = Qot_GetShortInterest_pb2.Request.FromString(frame.body).c2s
        market = "US" if c2s.security.market == 11 else "HK"
        return Request(
            code=f"{market}.{c2s.security.code}",
            next_key=c2s.nextKey if c2s.HasField("nextKey") else "",
            num=c2s.num if c2s.HasField("num") else 10,
            connection=connection,
            on_connection=on_connection,
            overall=len(self.requests) + 1,
        )

    async def _answer(
        self, frame: Frame, request: Request, fault: Fault, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer as ``fault`` says; False once the connection is to be closed."""
        if fault == "drop":
            return False
        if fault == "silent":
            return True
        if fault == "trickle":
            # A frame announcing a 64 KiB body, sent a byte at a time: it never completes.
            data = _frame(frame, bytes(65536))
            for byte in data:
                if writer.is_closing():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.01)
            return False
        page = self._page(request)
        body = page.SerializeToString()
        if fault == "bad_utf8_ret_msg":
            failed = Qot_GetShortInterest_pb2.Response(retType=-1).SerializeToString()
            body = failed + b"\x12" + bytes([len(_NOT_UTF8)]) + _NOT_UTF8
        elif fault in ("bad_utf8_next_key", "bad_utf8_timestamp"):
            body = _with_bad_text(page, fault)
        if fault == "wrong_proto":
            writer.write(encode_frame(ProtoId.KEEP_ALIVE, frame.serial, body))
        elif fault == "garbage":
            writer.write(_frame(frame, b"\xff\xff\xff\xff"))
        elif fault == "corrupt":
            corrupt = bytearray(_frame(frame, body))
            corrupt[HEADER_SIZE - 9] ^= 0xFF  # a byte of the SHA-1
            writer.write(bytes(corrupt))
        else:
            writer.write(_frame(frame, body))
        return True

    def _page(self, request: Request) -> Qot_GetShortInterest_pb2.Response:
        if request.code in self.unknown:
            return Qot_GetShortInterest_pb2.Response(
                retType=-1, retMsg=f"unknown stock {request.code}", errCode=2
            )
        if request.code in self.refusals:
            return Qot_GetShortInterest_pb2.Response(
                retType=-1, retMsg=self.refusals[request.code], errCode=-1
            )
        dates = dates_of(request.code, self.rows)
        fresh = self.repeat or not request.next_key
        start = 0 if fresh else int(request.next_key.removeprefix("@"))
        end = min(start + request.num, len(dates))
        reply = Qot_GetShortInterest_pb2.Response(retType=0)
        us = request.code.startswith("US.")
        for day in dates[start:end]:
            item = reply.s2c.usItemList.add() if us else reply.s2c.hkItemList.add()
            item.timestampStr = day
            item.timestamp = int(dt.datetime.fromisoformat(day).timestamp())
            item.closePrice = 100.0
            for name, value in self.bad_rows.get((request.code, day), {}).items():
                if value is None:
                    item.ClearField(name)  # type: ignore[arg-type]
                else:
                    setattr(item, name, value)
        reply.s2c.nextKey = f"@{end}" if end < len(dates) else "-1"
        if self.repeat:
            reply.s2c.nextKey = f"k{request.overall}"
        return reply


def _frame(request: Frame, body: bytes) -> bytes:
    return encode_frame(request.proto_id, request.serial, body)


def _with_bad_text(page: Qot_GetShortInterest_pb2.Response, fault: Fault) -> bytes:
    """``page``'s body with one text field's bytes replaced by invalid UTF-8."""
    body = page.SerializeToString()
    if fault == "bad_utf8_next_key":
        old = page.s2c.nextKey.encode()
    else:
        items = page.s2c.usItemList or page.s2c.hkItemList
        old = items[0].timestampStr.encode()
    # Same length, so every enclosing length prefix stays right.
    bad = (_NOT_UTF8 * 4)[: len(old)]
    assert body.count(old) >= 1
    return body.replace(old, bad, 1)


@contextlib.asynccontextmanager
async def hostile(**settings: object) -> AsyncIterator[HostileGateway]:
    """A started `HostileGateway` with ``settings``; it stops, dropping every connection, after."""
    gateway = HostileGateway(**settings)  # type: ignore[arg-type]
    server = await asyncio.start_server(gateway._serve, gateway.host, 0)
    gateway.port = server.sockets[0].getsockname()[1]
    try:
        yield gateway
    finally:
        server.close()
        gateway.drop_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


# -- for the tests ----------------------------------------------------------------------------

#: Keeps a broken test from hanging; never reached by a passing one.
GUARD = 20.0


def client_for(gateway: HostileGateway, **options: object) -> Client:
    """A client of ``gateway`` with no quota and quick reconnects, unless ``options`` say else."""
    options.setdefault("rate_limit", None)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    return Client(gateway.host, gateway.port, **options)  # type: ignore[arg-type]


def first_only(fault: Fault) -> Callable[[Request], Fault]:
    """A script answering the first request with ``fault`` and every other normally."""
    return lambda request: fault if request.overall == 1 else "reply"


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (within GUARD): the gateway's record is plain data."""
    async with asyncio.timeout(GUARD):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
