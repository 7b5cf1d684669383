"""An OpenD simulator that speaks the real wire protocol over TCP.

It answers InitConnect, KeepAlive, GetGlobalState and short interest (3249) the way OpenD does,
enforces the request quota as a strict sliding window, and can misbehave on purpose (drop
connections, delay, split, reorder, push) so clients can be tested against what a real gateway
does on a bad day.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import datetime as dt
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Final, Self

from google.protobuf import json_format
from google.protobuf.message import DecodeError, EncodeError, Message

from .._crypto import AesCipher, AesMode, RsaCipher, load_rsa_private_key
from .._errors import ProtocolError
from .._proto import (
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from .._security import Market, parse_code
from .._wire import Frame, FrameDecoder, ProtoFmt, ProtoId, encode_frame
from ._history import (
    BUILTIN_PROFILES,
    DEFAULT_AS_OF,
    HkRow,
    SymbolProfile,
    UsRow,
    generate_history,
)

__all__ = ["Faults", "OpenDSimulator", "Quota", "SimulatorStats", "SimulatorThread"]

logger = logging.getLogger("aiomoomoo.testing")

_SERVER_VERSION: Final = 1011
_DEFAULT_NUM: Final = 10
_MAX_NUM: Final = 50
_RET_OK: Final = 0
_RET_FAILED: Final = -1
_ERR_PARAM: Final = 1
_ERR_UNKNOWN_SECURITY: Final = 2
_ERR_RATE_LIMIT: Final = 3
_ERR_UNSUPPORTED: Final = 4
_NO_ENCRYPTION: Final = -1  # Common.PacketEncAlgo_None
_AES_CBC: Final = 2  # Common.PacketEncAlgo_AES_CBC


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``max_requests`` short-interest requests in any ``period`` seconds."""

    max_requests: int = 30
    period: float = 30.0

    def __post_init__(self) -> None:
        # A NaN or infinite period would never let a request leave the window.
        if self.max_requests < 1 or not 0 < self.period < math.inf:
            raise ValueError(
                f"quota needs max_requests >= 1 and a finite period > 0, got "
                f"{self.max_requests} requests per {self.period} seconds"
            )

    @classmethod
    def parse(cls, text: str) -> Quota:
        """Parse ``"N/SECONDS"``, as the command line takes it (``"30/30"``)."""
        count, slash, seconds = text.partition("/")
        try:
            if not slash:
                raise ValueError
            max_requests, period = int(count), float(seconds)
        except ValueError:
            raise ValueError(f"quota {text!r} is not N/SECONDS, for example 30/30") from None
        return cls(max_requests, period)


@dataclass(slots=True)
class Faults:
    """Misbehaviour to inject; change the attributes at any time, they apply to the next frame.

    - ``drop_after``: answer this many short-interest requests on a connection, then close the
      connection when the next one arrives, leaving it unanswered.
    - ``reply_delay`` / ``reply_jitter``: hold each reply this many seconds, plus a seeded random
      extra of up to ``reply_jitter``.
    - ``split_writes``: send replies in writes of at most this many bytes, yielding between them.
    - ``reorder_window``: collect the replies ready within this many seconds and send them in one
      write, newest first.
    - ``push_every``: before every N-th short-interest reply, push a Notify (1003) that reuses the
      request's serial number.
    - ``answer_keepalive``: set to False to leave KeepAlives unanswered.
    """

    drop_after: int | None = None
    reply_delay: float = 0.0
    reply_jitter: float = 0.0
    split_writes: int | None = None
    reorder_window: float | None = None
    push_every: int | None = None
    answer_keepalive: bool = True


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has seen; ``accepted_at`` holds the clock time of every served 3249."""

    connections: int = 0
    requests: int = 0
    rate_limited: int = 0
    failed: int = 0
    keepalives: int = 0
    pushes: int = 0
    dropped: int = 0
    accepted_at: list[float] = field(default_factory=list)


def _fail(response: Message, ret_msg: str, err_code: int) -> Message:
    response.retType = _RET_FAILED  # type: ignore[attr-defined]
    response.retMsg = ret_msg  # type: ignore[attr-defined]
    response.errCode = err_code  # type: ignore[attr-defined]
    return response


class _History:
    """One symbol's rows, newest first, with the lookup paging needs."""

    __slots__ = ("_descending", "market", "rows")

    def __init__(self, market: Market, rows: Sequence[UsRow] | Sequence[HkRow]) -> None:
        self.market = market
        self.rows: list[UsRow | HkRow] = list(rows)
        # Negated so bisect (ascending) can search the newest-first timestamps.
        self._descending = [-(r.timestamp if r.timestamp is not None else 0) for r in self.rows]

    def start_after(self, next_key: str) -> int | None:
        """Index of the first row after the page that ``next_key`` ended; None if it is invalid."""
        if next_key.startswith("@") and next_key[1:].isdigit():
            return min(int(next_key[1:]), len(self.rows))
        try:
            timestamp = int(next_key)
        except ValueError:
            return None
        return bisect.bisect_right(self._descending, -timestamp)

    def key_after(self, end: int) -> str:
        if end >= len(self.rows):
            return "-1"
        # Like OpenD, the key is the page's last timestamp. Hand-made histories may repeat
        # timestamps, leave them out or not be sorted; where the timestamp would not lead back to
        # exactly this row, page by position instead.
        last = self.rows[end - 1].timestamp
        if last is None or self.start_after(str(last)) != end:
            return f"@{end}"
        return str(last)


class OpenDSimulator:
    """An asyncio TCP server that behaves like OpenD for the protocols aiomoomoo uses.

    Use it as an async context manager; ``port=0`` picks a free port, read it from ``port``
    afterwards. The built-in universe holds US.AAPL, US.TSLA, US.NVDA, US.SPY, US.BRK.B, US.MSFT,
    HK.00700, HK.09988, HK.00005, HK.02800 and HK.03690; `add_symbol` adds more.

    ``quota`` is the short-interest request quota shared by every connection (None for none),
    ``seed`` makes the generated histories and connection keys reproducible, ``faults`` the
    misbehaviour to inject, ``keepalive_interval`` what InitConnect tells clients, ``as_of`` the
    newest day of the generated histories and ``clock`` the monotonic clock the quota uses.

    ``rsa_private_key`` (a PEM path or PEM bytes, 1024-bit) makes it an OpenD configured for
    encryption: InitConnect must come RSA-encrypted with that key, and when the client asks for
    encryption every later frame travels under AES, ``aes_mode="cbc"`` (with an IV, as current
    OpenD) or ``"ecb"`` (OpenD's FTAES-ECB, for clients that do not ask for CBC or older gateways).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quota: Quota | None = Quota(),
        seed: int = 0,
        faults: Faults | None = None,
        keepalive_interval: int = 10,
        as_of: dt.date = DEFAULT_AS_OF,
        clock: Callable[[], float] = time.monotonic,
        rsa_private_key: str | os.PathLike[str] | bytes | None = None,
        aes_mode: AesMode = "cbc",
    ) -> None:
        if aes_mode not in ("cbc", "ecb"):
            raise ValueError(f"aes_mode must be 'cbc' or 'ecb', got {aes_mode!r}")
        self.rsa: RsaCipher | None = (
            RsaCipher(load_rsa_private_key(rsa_private_key))
            if rsa_private_key is not None
            else None
        )
        self.aes_mode: AesMode = aes_mode
        self.host = host
        self.port = port
        self.quota = quota
        self.seed = seed
        self.faults = faults if faults is not None else Faults()
        self.keepalive_interval = keepalive_interval
        self.as_of = as_of
        self.clock = clock
        self.stats = SimulatorStats()
        self._profiles: dict[str, SymbolProfile] = dict(BUILTIN_PROFILES)
        self._histories: dict[str, _History] = {}
        self._window: collections.deque[float] = collections.deque()
        self._random = random.Random(seed)
        self._next_conn_id = 7_000_000_000_000_000_000 + self._random.randrange(1_000_000)
        self._server: asyncio.Server | None = None
        self._connections: set[_SimulatedConnection] = set()

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        return (
            f"<OpenDSimulator {state} {self.host}:{self.port} quota={self.quota} "
            f"connections={len(self._connections)} requests={self.stats.requests}>"
        )

    # -- universe ---------------------------------------------------------------------------

    @property
    def codes(self) -> list[str]:
        """Every code the simulator can serve."""
        return sorted(set(self._profiles) | set(self._histories))

    def add_symbol(
        self,
        code: str,
        profile: SymbolProfile | None = None,
        *,
        rows: Sequence[UsRow] | Sequence[HkRow] | None = None,
    ) -> None:
        """Serve ``code``: a history generated from ``profile``, or exactly ``rows`` (newest first).

        Rows must match the code's market (``UsRow`` for US, ``HkRow`` for HK); a field set to
        None is left out of the reply, as OpenD leaves out fields it has no value for.
        """
        security = parse_code(code)
        if (profile is None) == (rows is None):
            raise ValueError("add_symbol needs exactly one of profile= or rows=")
        if rows is not None:
            row_type = UsRow if security.market is Market.US else HkRow
            if not all(isinstance(r, row_type) for r in rows):
                raise TypeError(f"rows for {code!r} must all be {row_type.__name__}")
            self._histories[security.code] = _History(security.market, rows)
        else:
            assert profile is not None
            self._profiles[security.code] = profile
            self._histories.pop(security.code, None)

    def history(self, code: str) -> list[UsRow] | list[HkRow]:
        """The full history served for ``code``, newest first; KeyError if it is not served."""
        return list(self._history(parse_code(code).code).rows)  # type: ignore[return-value]

    def _history(self, code: str) -> _History:
        history = self._histories.get(code)
        if history is None:
            profile = self._profiles[code]
            rows = generate_history(code, profile, seed=self.seed, as_of=self.as_of)
            history = self._histories[code] = _History(parse_code(code).market, rows)
        return history

    # -- serving ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("OpenD simulator listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_connections()
        if server is not None:
            await server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connection_count(self) -> int:
        """Connections open right now."""
        return len(self._connections)

    def drop_connections(self) -> None:
        """Abort every open connection, as a crashing gateway would."""
        for connection in list(self._connections):
            connection.abort()

    def push_notify(self, desc: str = "simulated gateway event") -> None:
        """Push a Notify (1003) GtwEvent to every connection that finished InitConnect."""
        for connection in list(self._connections):
            if connection.conn_id:
                connection.push(serial=0, desc=desc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        connection = _SimulatedConnection(self, writer)
        self._connections.add(connection)
        decoder = FrameDecoder(decrypt=connection.decrypt if self.rsa is not None else None)
        try:
            while data := await reader.read(256 * 1024):
                for frame in decoder.feed(data):
                    if connection.closed:
                        return
                    connection.handle(frame)
        except ProtocolError as exc:
            logger.warning("simulator closing a connection that broke the protocol: %s", exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(connection)
            connection.abort()

    def _admit(self) -> bool:
        """Count one short-interest request against the quota; False if it is over."""
        now = self.clock()
        if self.quota is not None:
            window = self._window
            while window and window[0] <= now - self.quota.period:
                window.popleft()
            if len(window) >= self.quota.max_requests:
                return False
            window.append(now)
        self.stats.accepted_at.append(now)
        return True

    def _new_conn_id(self) -> int:
        self._next_conn_id += 1 + self._random.randrange(1000)
        return self._next_conn_id


class _SimulatedConnection:
    """One client connection: protocol handling plus the fault injection on its replies."""

    def __init__(self, simulator: OpenDSimulator, writer: asyncio.StreamWriter) -> None:
        self.simulator = simulator
        self.writer = writer
        self.conn_id = 0
        self.closed = False
        # Encryption: whether InitConnect came under RSA and its reply goes back under RSA, and
        # the AES cipher that takes over once that reply has been encoded.
        self._rsa_request = False
        self._rsa_reply = False
        self._next_aes: AesCipher | None = None
        self._aes: AesCipher | None = None
        self._short_interest_count = 0
        self._held: list[bytes] = []
        self._outbox: asyncio.Queue[bytes] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        if self._pump is not None:
            self._pump.cancel()
        self.writer.transport.abort()

    def decrypt(self, proto_id: int, body: bytes) -> bytes:
        """The decoder's hook when the simulator has an RSA key."""
        rsa = self.simulator.rsa
        assert rsa is not None
        if proto_id == ProtoId.INIT_CONNECT:
            try:
                plain = rsa.decrypt(body)
            except ProtocolError:
                # Perhaps a client without the key: the SHA-1 check tells plaintext from garbage,
                # and _init_connect refuses it politely.
                self._rsa_request = False
                return body
            self._rsa_request = True
            return plain
        return self._aes.decrypt(body) if self._aes is not None else body

    def _encrypt(self, proto_id: int, body: bytes) -> bytes:
        if proto_id == ProtoId.INIT_CONNECT and self._rsa_reply:
            rsa = self.simulator.rsa
            assert rsa is not None
            encrypted = rsa.encrypt(body)
            self._aes, self._next_aes = self._next_aes, None
            return encrypted
        return self._aes.encrypt(body) if self._aes is not None else body

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, frame: Frame) -> None:
        sim = self.simulator
        handler = {
            ProtoId.INIT_CONNECT: self._init_connect,
            ProtoId.KEEP_ALIVE: self._keep_alive,
            ProtoId.GET_GLOBAL_STATE: self._global_state,
            ProtoId.GET_SHORT_INTEREST: self._short_interest,
        }.get(frame.proto_id)
        if handler is None:
            response: Message = _fail(
                KeepAlive_pb2.Response(),
                f"proto id {frame.proto_id} is not supported by the aiomoomoo OpenD simulator "
                "(it serves 1001, 1002, 1004 and 3249)",
                _ERR_UNSUPPORTED,
            )
        elif frame.proto_id != ProtoId.INIT_CONNECT and not self.conn_id:
            response = _fail(KeepAlive_pb2.Response(), "InitConnect must come first", _ERR_PARAM)
        else:
            if frame.proto_id == ProtoId.GET_SHORT_INTEREST:
                faults = sim.faults
                if (
                    faults.drop_after is not None
                    and self._short_interest_count >= faults.drop_after
                ):
                    sim.stats.dropped += 1
                    self.abort()
                    return
                self._short_interest_count += 1
            elif frame.proto_id == ProtoId.KEEP_ALIVE and not sim.faults.answer_keepalive:
                sim.stats.keepalives += 1
                return
            response = handler(frame)
        if response.retType != _RET_OK:  # type: ignore[attr-defined]
            sim.stats.failed += 1
        self._reply(frame, response)

    def _parse(self, frame: Frame, message: Message) -> bool:
        try:
            if frame.fmt == ProtoFmt.JSON:
                json_format.Parse(frame.body.decode("utf-8"), message)
            else:
                message.ParseFromString(frame.body)
        except (DecodeError, json_format.ParseError, UnicodeDecodeError):
            return False
        return message.IsInitialized()

    def _init_connect(self, frame: Frame) -> Message:
        request = InitConnect_pb2.Request()
        response = InitConnect_pb2.Response()
        if not self._parse(frame, request):
            return _fail(response, "malformed InitConnect request", _ERR_PARAM)
        sim = self.simulator
        algorithm = request.c2s.packetEncAlgo if request.c2s.HasField("packetEncAlgo") else None
        wants_encryption = algorithm != _NO_ENCRYPTION
        if sim.rsa is None:
            if algorithm is not None and wants_encryption:
                return _fail(
                    response, "this simulator is not configured for encryption", _ERR_PARAM
                )
        elif not self._rsa_request:
            return _fail(
                response,
                "this OpenD requires encrypted connections: configure the client with its RSA "
                "private key",
                _ERR_PARAM,
            )
        else:
            # As OpenD: the reply goes back under RSA when the client asked for encryption, and
            # with no algorithm named OpenD picks its FTAES-ECB.
            self._rsa_reply = wants_encryption
        if not self.conn_id:
            self.conn_id = sim._new_conn_id()
        response.retType = _RET_OK
        s2c = response.s2c
        s2c.serverVer = _SERVER_VERSION
        s2c.loginUserID = 10_000_000 + sim.seed
        s2c.connID = self.conn_id
        s2c.connAESKey = f"{sim._random.getrandbits(64):016X}"
        s2c.keepAliveInterval = sim.keepalive_interval
        if self._rsa_reply:
            iv: bytes | None = None
            if sim.aes_mode == "cbc" and algorithm == _AES_CBC:
                s2c.aesCBCiv = f"{sim._random.getrandbits(64):016x}"
                iv = s2c.aesCBCiv.encode()
            self._next_aes = AesCipher(s2c.connAESKey.encode(), iv=iv)
        return response

    def _keep_alive(self, frame: Frame) -> Message:
        self.simulator.stats.keepalives += 1
        request = KeepAlive_pb2.Request()
        response = KeepAlive_pb2.Response()
        if not self._parse(frame, request):
            return _fail(response, "malformed KeepAlive request", _ERR_PARAM)
        response.retType = _RET_OK
        response.s2c.time = int(time.time())
        return response

    def _global_state(self, frame: Frame) -> Message:
        request = GetGlobalState_pb2.Request()
        response = GetGlobalState_pb2.Response()
        if not self._parse(frame, request):
            return _fail(response, "malformed GetGlobalState request", _ERR_PARAM)
        response.retType = _RET_OK
        s2c = response.s2c
        closed = 6  # QotMarketState_Closed: the simulator's markets never trade
        s2c.marketHK = s2c.marketUS = s2c.marketSH = s2c.marketSZ = s2c.marketHKFuture = closed
        s2c.qotLogined = True
        s2c.trdLogined = False
        s2c.serverVer = _SERVER_VERSION
        s2c.serverBuildNo = 1
        s2c.time = int(time.time())
        s2c.localTime = time.time()
        s2c.connID = self.conn_id
        return response

    def _short_interest(self, frame: Frame) -> Message:
        sim = self.simulator
        sim.stats.requests += 1
        request = Qot_GetShortInterest_pb2.Request()
        response = Qot_GetShortInterest_pb2.Response()
        if not self._parse(frame, request):
            return _fail(response, "malformed Qot_GetShortInterest request", _ERR_PARAM)
        c2s = request.c2s
        if not sim._admit():
            sim.stats.rate_limited += 1
            quota = sim.quota
            assert quota is not None
            return _fail(
                response,
                f"rate limit exceeded: at most {quota.max_requests} requests "
                f"in any {quota.period:g} seconds",
                _ERR_RATE_LIMIT,
            )
        num = c2s.num if c2s.HasField("num") else _DEFAULT_NUM
        if not 1 <= num <= _MAX_NUM:
            return _fail(response, f"num must be between 1 and {_MAX_NUM}, got {num}", _ERR_PARAM)
        market, symbol = c2s.security.market, c2s.security.code
        if market not in (Market.HK, Market.US):
            return _fail(
                response,
                f"short interest covers HK and US securities only, not market {market}",
                _ERR_PARAM,
            )
        code = f"{Market(market).name}.{symbol}"
        try:
            history = sim._history(code)
        except KeyError:
            return _fail(response, f"unknown stock {code}", _ERR_UNKNOWN_SECURITY)
        start = 0
        next_key = c2s.nextKey if c2s.HasField("nextKey") else ""
        if next_key == "-1":
            start = len(history.rows)
        elif next_key:
            found = history.start_after(next_key)
            if found is None:
                return _fail(response, f"invalid nextKey {next_key!r}", _ERR_PARAM)
            start = found
        end = min(start + num, len(history.rows))
        response.retType = _RET_OK
        s2c = response.s2c
        items = s2c.usItemList if history.market is Market.US else s2c.hkItemList
        for row in history.rows[start:end]:
            write_row(items.add(), row)
        s2c.nextKey = history.key_after(end)
        return response

    # -- replies and faults -----------------------------------------------------------------

    def _encode(self, frame: Frame, response: Message) -> bytes:
        try:
            if frame.fmt == ProtoFmt.JSON:
                body = json_format.MessageToJson(response).encode("utf-8")
            else:
                body = response.SerializeToString()
        except EncodeError:  # pragma: no cover - a simulator bug, not a client's
            logger.exception("simulator built an incomplete reply")
            raise
        return encode_frame(
            frame.proto_id,
            frame.serial,
            body,
            fmt=frame.fmt,
            encrypt=partial(self._encrypt, frame.proto_id),
        )

    def _reply(self, frame: Frame, response: Message) -> None:
        faults = self.simulator.faults
        data = self._encode(frame, response)
        if (
            frame.proto_id == ProtoId.GET_SHORT_INTEREST
            and faults.push_every
            and self._short_interest_count % faults.push_every == 0
        ):
            data = self._push_bytes(frame.serial, "simulated push") + data
        delay = faults.reply_delay
        if faults.reply_jitter:
            delay += self.simulator._random.uniform(0, faults.reply_jitter)
        if delay > 0:
            self._later(delay, self._release, data)
        else:
            self._release(data)

    def _later(self, delay: float, callback: Callable[[bytes], None], data: bytes) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            callback(data)

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)

    def _release(self, data: bytes) -> None:
        window = self.simulator.faults.reorder_window
        if window is None:
            self._send(data)
            return
        if not self._held:
            self._later(window, lambda _: self._flush_held(), b"")
        self._held.append(data)

    def _flush_held(self) -> None:
        held, self._held = self._held, []
        self._send(b"".join(reversed(held)))

    def _push_bytes(self, serial: int, desc: str) -> bytes:
        self.simulator.stats.pushes += 1
        push = Notify_pb2.Response(retType=_RET_OK)
        push.s2c.type = Notify_pb2.NotifyType_GtwEvent
        push.s2c.event.eventType = Notify_pb2.GtwEventType_None
        push.s2c.event.desc = desc
        return encode_frame(
            ProtoId.NOTIFY,
            serial,
            push.SerializeToString(),
            encrypt=partial(self._encrypt, ProtoId.NOTIFY),
        )

    def push(self, *, serial: int, desc: str) -> None:
        self._send(self._push_bytes(serial, desc))

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        chunk = self.simulator.faults.split_writes
        if not chunk and self._outbox is None:
            self.writer.write(data)
            return
        if self._outbox is None:
            self._outbox = asyncio.Queue()
            self._pump = asyncio.get_running_loop().create_task(self._pump_outbox())
        self._outbox.put_nowait(data)

    async def _pump_outbox(self) -> None:
        # Small writes with a pause between them, so the client really sees partial frames.
        assert self._outbox is not None
        with contextlib.suppress(ConnectionError):
            while True:
                data = await self._outbox.get()
                size = self.simulator.faults.split_writes or len(data)
                for offset in range(0, len(data), size):
                    self.writer.write(data[offset : offset + size])
                    await self.writer.drain()
                    await asyncio.sleep(0.0005)


def _us_fields(row: UsRow) -> tuple[tuple[str, object], ...]:
    return (
        ("timestamp", row.timestamp),
        ("timestampStr", row.timestamp_str),
        ("sharesShort", row.shares_short),
        ("shortPercent", row.short_percent),
        ("avgDailyShareVolume", row.avg_daily_share_volume),
        ("daysToCover", row.days_to_cover),
        ("closePrice", row.close_price),
        ("lastClosePrice", row.last_close_price),
    )


def _hk_fields(row: HkRow) -> tuple[tuple[str, object], ...]:
    return (
        ("timestamp", row.timestamp),
        ("timestampStr", row.timestamp_str),
        ("closePrice", row.close_price),
        ("lastClosePrice", row.last_close_price),
        ("aggregatedShort", row.aggregated_short),
        ("aggregatedShortRatio", row.aggregated_short_ratio),
    )


_PB_FIELDS: Final[dict[type, Callable[..., tuple[tuple[str, object], ...]]]] = {
    UsRow: _us_fields,
    HkRow: _hk_fields,
}


def write_row(item: Message, row: UsRow | HkRow) -> None:
    """Fill a ``UsShortInterestItem`` / ``HkShortInterestItem`` from ``row``; None stays absent."""
    for name, value in _PB_FIELDS[type(row)](row):
        if value is not None:
            setattr(item, name, value)


class SimulatorThread:
    """Run an `OpenDSimulator` on its own event loop in a background thread.

    For synchronous code (the official SDK, a notebook): ``with SimulatorThread() as sim:``
    yields the started simulator; its ``host`` and ``port`` are ready to connect to. Keyword
    arguments go to `OpenDSimulator`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: object) -> None:
        self._args = (host, port)
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.simulator: OpenDSimulator | None = None

    def __enter__(self) -> OpenDSimulator:
        self._thread = threading.Thread(target=self._run, name="opend-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self.simulator is not None
        return self.simulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.simulator = OpenDSimulator(*self._args, **self._options)  # type: ignore[arg-type]
            await self.simulator.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.simulator.close()
