"""OpenD's WebSocket transport, the one the official JavaScript SDK (``futu-api``) speaks.

Every WebSocket message is one binary packet, big-endian. A request is the 8 bytes
``b"ft-v1.0\\0"``, a u32 command, a u64 section (the client's request number) and a protobuf body;
a reply repeats the magic, command and section, adds an i32 error and 20 bytes of NUL-padded
ASCII error text, then the body. There is no length field, checksum or encryption: the WebSocket
frames the packet. Command 1 (``InitWebSocket``) logs in with the lowercase hex MD5 of the
gateway's WebSocket key and stands in for InitConnect; every other command is an OpenD protocol id
and goes to the same `RequestHandler` the TCP transport uses, so both share one quota, one
universe, one set of faults and one `SimulatorStats`. Replies carry the request's section; pushes
go out with section 0, which no request uses.

Hostile input never raises out of here: a text message, a packet shorter than its header or with
the wrong magic closes the connection with a WebSocket close code that says why, and a body that
does not parse gets a failed reply. Stream-level faults (``split_writes``, ``reorder_window``) are
the TCP transport's; the message-level ones apply here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import struct
import time
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from .._proto import InitWebSocket_pb2, KeepAlive_pb2
from .._wire import ProtoId
from ._handler import Reply, RequestHandler
from ._link import _CLOSE, Link, LinkSet
from ._stats import DEFAULT_LIMITS, Limits

try:
    from websockets.asyncio.server import Server, ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import CloseCode
    from websockets.protocol import State
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the simulator's WebSocket transport needs the websockets library: "
        "pip install 'aiomoomoo[websocket]'"
    ) from exc

__all__ = [
    "INIT_WEBSOCKET",
    "MAGIC",
    "WebSocketLink",
    "WebSocketPacket",
    "WebSocketServer",
    "decode_request",
    "encode_reply",
    "websocket_key_digest",
]

logger = logging.getLogger("aiomoomoo.testing")

MAGIC: Final = b"ft-v1.0\x00"
#: The login command: an ``InitWebSocket`` request and reply.
INIT_WEBSOCKET: Final = 1
_REQUEST_HEADER: Final = struct.Struct(">8sIQ")
_REPLY_HEADER: Final = struct.Struct(">8sIQi20s")
_PUSH_SECTION: Final = 0

# Header error codes. OpenD's own values are not public: these are the simulator's, and any
# non-zero value means the same to the JavaScript SDK (login failed, or the request did).
_ERROR_OK: Final = 0
_ERROR_LOGIN: Final = 1
_ERROR_NOT_LOGGED_IN: Final = 2
_RET_FAILED: Final = -1
_ERR_PARAM: Final = 1


class WebSocketPacket(NamedTuple):
    """One request as the client sent it: ``cmd`` (a proto id, or 1 to log in), ``section``."""

    cmd: int
    section: int
    body: bytes


def websocket_key_digest(key: str | None) -> str:
    """What a client configured with ``key`` sends as ``websocketKey``: its MD5 in lowercase hex.

    A client without a key sends the empty string.
    """
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest() if key else ""


def decode_request(data: bytes) -> WebSocketPacket:
    """Split a request packet; ValueError if it is shorter than its header or has a wrong magic."""
    if len(data) < _REQUEST_HEADER.size:
        raise ValueError(
            f"packet of {len(data)} bytes is shorter than the {_REQUEST_HEADER.size}-byte header"
        )
    magic, cmd, section = _REQUEST_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"packet starts with {magic!r}, not {MAGIC!r}")
    return WebSocketPacket(cmd, section, bytes(data[_REQUEST_HEADER.size :]))


def encode_reply(
    cmd: int, section: int, body: bytes, *, error: int = _ERROR_OK, error_text: str = ""
) -> bytes:
    """A reply packet; ``error_text`` is cut to the 20 ASCII bytes the header holds."""
    text = error_text.encode("ascii", "replace")[:20]
    return _REPLY_HEADER.pack(MAGIC, cmd, section, error, text) + body


def _failure(ret_msg: str) -> bytes:
    # Every OpenD response starts retType, retMsg, errCode, so a KeepAlive response without s2c
    # parses as any of them. The body is never empty: the SDK only settles a request whose reply
    # has one.
    return KeepAlive_pb2.Response(
        retType=_RET_FAILED, retMsg=ret_msg, errCode=_ERR_PARAM
    ).SerializeToString()


class WebSocketLink(Link):
    """One WebSocket client of the simulator; `serve` runs it until either side closes.

    ``digest`` is the MD5 the login must carry (`websocket_key_digest`), None to accept any.
    ``limits`` apply as on TCP, the login standing in for InitConnect.
    """

    def __init__(
        self,
        handler: RequestHandler,
        connection: ServerConnection,
        *,
        digest: str | None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(handler, handler.open_session(), max_pending=limits.max_pending)
        self.connection = connection
        self.digest = digest
        self.limits = limits
        self._close_code = CloseCode.NORMAL_CLOSURE
        self._close_reason = ""

    async def serve(self) -> None:
        """Read, answer and write until the peer or the simulator closes the connection."""
        loop = asyncio.get_running_loop()
        opened = last_request = loop.time()
        try:
            while not self.closed:
                async with asyncio.timeout_at(self._deadline(opened, last_request)):
                    message = await self.connection.recv()
                last_request = loop.time()
                if isinstance(message, str):
                    await self.connection.close(CloseCode.UNSUPPORTED_DATA, "binary packets only")
                    return
                try:
                    packet = decode_request(message)
                except ValueError as exc:
                    await self.connection.close(CloseCode.PROTOCOL_ERROR, str(exc)[:120])
                    return
                self._handle(packet)
                await self.wait_writable()
        except TimeoutError:
            logger.info("simulator closing %s", self._timed_out())
        except ConnectionClosed:
            pass
        finally:
            self.abort()

    def _deadline(self, opened: float, last_request: float) -> float | None:
        # As on TCP: the login within the handshake timeout, then a request within every idle
        # timeout, logged in or not. A silent client would otherwise hold one of the
        # connections that `Limits.max_connections` shares with TCP for ever.
        limits = self.limits
        deadlines = []
        if limits.handshake_timeout is not None and not self.session.conn_id:
            deadlines.append(opened + limits.handshake_timeout)
        if limits.idle_timeout is not None:
            deadlines.append(last_request + limits.idle_timeout)
        return min(deadlines, default=None)

    def _timed_out(self) -> str:
        if not self.session.conn_id:
            return "a WebSocket client that did not log in in time"
        return f"a WebSocket client idle for {self.limits.idle_timeout:g} s"

    def _handle(self, packet: WebSocketPacket) -> None:
        cmd, section, body = packet
        faults = self.handler.faults
        if self._close_code == CloseCode.POLICY_VIOLATION or faults.silent:
            return  # after a failed login until the close, or a hung gateway: no answer
        if cmd == INIT_WEBSOCKET:
            reply, ok = self._login(body)
            if ok:
                # The login stands in for InitConnect, and so does its fault.
                self._send(encode_reply(cmd, section, reply), close=faults.close_after_init_connect)
            else:
                self.handler.stats.failed += 1
                self._close_code, self._close_reason = CloseCode.POLICY_VIOLATION, "login failed"
                self._send(
                    encode_reply(
                        cmd, section, reply, error=_ERROR_LOGIN, error_text="login failed"
                    ),
                    close=True,
                )
        elif not self.session.conn_id:
            self.handler.stats.failed += 1
            self._send(
                encode_reply(
                    cmd,
                    section,
                    _failure("InitWebSocket must come first"),
                    error=_ERROR_NOT_LOGGED_IN,
                    error_text="not logged in",
                )
            )
        else:
            # The section stands in for TCP's serial: the handler passes it back untouched.
            self.answer(self.handler.handle(self.session, cmd, section, body))

    def _login(self, body: bytes) -> tuple[bytes, bool]:
        """InitWebSocket's reply body, and whether the login succeeded."""
        request = InitWebSocket_pb2.Request()
        response = InitWebSocket_pb2.Response(retType=_RET_FAILED, errCode=_ERR_PARAM)
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError):
            response.retMsg = "malformed InitWebSocket request"
            return response.SerializeToString(), False
        # str(): protobuf hands a proto2 string that is not UTF-8 over as bytes.
        sent = str(request.c2s.websocketKey).lower().encode("utf-8")
        if self.digest is not None and not hmac.compare_digest(sent, self.digest.encode()):
            response.retMsg = (
                "websocketKey does not match this gateway's WebSocket key"
                if sent
                else "this gateway needs a WebSocket key"
            )
            return response.SerializeToString(), False
        response.retType = 0
        response.ClearField("errCode")
        response.s2c.connID = self.handler.login(self.session)
        response.s2c.serverTime = int(time.time())
        return response.SerializeToString(), True

    def _send(self, packet: bytes, *, close: bool = False) -> None:
        # Login and refusal replies carry a header error the handler knows nothing of, so they
        # skip `Link.encode` but keep their place in the outbox.
        if self.closed:
            return
        self.pending += len(packet)
        self._enqueue([packet])
        if close:
            self._enqueue(_CLOSE)

    # -- Link -------------------------------------------------------------------------------

    def encode(self, reply: Reply) -> bytes:
        section = _PUSH_SECTION if reply.proto_id == ProtoId.NOTIFY else reply.serial
        return encode_reply(reply.proto_id, section, reply.body)

    async def write(self, messages: list[bytes]) -> None:
        for message in messages:
            await self.connection.send(message)

    def abort_transport(self) -> None:
        transport = self.connection.transport
        if transport is not None:
            transport.abort()

    async def close_transport(self) -> None:
        await self.connection.close(self._close_code, self._close_reason)


class WebSocketServer:
    """Listens for WebSocket clients on ``host:port`` and serves each as a `WebSocketLink`.

    ``key`` is the gateway's WebSocket key: a client must log in with its MD5 (None accepts any
    login, as an OpenD without a key does). ``links`` is the simulator's set of open connections
    over every transport, which admits each new one under ``limits.max_connections``; ``limits``
    also bound the handshake, the login, idleness and the size of a request. ``port`` 0 picks a
    free port; read it from ``port`` once started.
    """

    def __init__(
        self,
        handler: RequestHandler,
        host: str,
        port: int,
        *,
        key: str | None,
        links: LinkSet,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.limits = limits
        self._digest = websocket_key_digest(key) if key is not None else None
        self._links = links
        self._server: Server | None = None
        # Every TCP connection the listener accepted and has not lost, upgraded or not: the
        # library only tracks them once their handshake is done.
        self._accepted: set[ServerConnection] = set()

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            max_size=_REQUEST_HEADER.size + self.limits.max_request_size,
            open_timeout=self.limits.handshake_timeout,
            # The SDK offers no compression; refusing it keeps a peer from making us inflate.
            compression=None,
            create_connection=_tracking(self._accepted),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("OpenD simulator WebSocket listening on %s:%d", self.host, self.port)

    def close(self) -> None:
        """Stop listening; the simulator drops the connections.

        A connection still in its opening handshake (it never sent the upgrade) is aborted at
        once: the library would otherwise wait for its handshake timeout before it closes.
        """
        if self._server is not None:
            self._server.close(close_connections=False)
            for connection in list(self._accepted):
                if connection.protocol.state is State.CONNECTING:
                    connection.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed and every connection's task has ended."""
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, connection: ServerConnection) -> None:
        link = WebSocketLink(self.handler, connection, digest=self._digest, limits=self.limits)
        if not self._links.admit(link):
            await connection.close(CloseCode.TRY_AGAIN_LATER, "too many connections")
            return
        try:
            await link.serve()
        finally:
            self._links.discard(link)


def _tracking(accepted: set[ServerConnection]) -> type[ServerConnection]:
    """A connection class that keeps itself in ``accepted`` from its first byte to its loss."""

    class TrackedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            accepted.add(self)

        def connection_lost(self, exc: Exception | None) -> None:
            accepted.discard(self)
            super().connection_lost(exc)

    return TrackedConnection
