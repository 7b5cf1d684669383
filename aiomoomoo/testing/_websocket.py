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
import contextlib
import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Iterable
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from .._proto import InitWebSocket_pb2, KeepAlive_pb2
from .._wire import ProtoId
from ._handler import Reply, RequestHandler, Session

try:
    from websockets.asyncio.server import Server, ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import CloseCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the simulator's WebSocket transport needs the websockets library: "
        "pip install 'aiomoomoo[websocket]'"
    ) from exc

__all__ = [
    "INIT_WEBSOCKET",
    "MAGIC",
    "WebSocketPacket",
    "WebSocketTransport",
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
_MAX_U32: Final = 0xFFFF_FFFF

# Header error codes. OpenD's own values are not public: these are the simulator's, and any
# non-zero value means the same to the JavaScript SDK (login failed, or the request did).
_ERROR_OK: Final = 0
_ERROR_LOGIN: Final = 1
_ERROR_NOT_LOGGED_IN: Final = 2
_RET_FAILED: Final = -1
_ERR_PARAM: Final = 1

#: Largest request accepted: a 3249 request is under 100 bytes, a login with an RSA key ~2 KiB.
MAX_MESSAGE_SIZE: Final = 64 * 1024


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
    """Split a request packet; ValueError if it is shorter than its header or has the wrong magic."""
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
    # Every OpenD response starts retType, retMsg, errCode: a KeepAlive response without s2c
    # parses as any of them. The body is never empty, since the SDK only settles a request
    # whose reply has one.
    return KeepAlive_pb2.Response(
        retType=_RET_FAILED, retMsg=ret_msg, errCode=_ERR_PARAM
    ).SerializeToString()


class _Peer:
    """One WebSocket client: its handler session and the replies still being held back."""

    __slots__ = ("connection", "pending", "session")

    def __init__(self, connection: ServerConnection, session: Session) -> None:
        self.connection = connection
        self.session = session
        self.pending: set[asyncio.Task[None]] = set()

    def abort(self) -> None:
        """Drop the connection at once, as a crashing gateway would: no close handshake."""
        for task in self.pending:
            task.cancel()
        transport = self.connection.transport
        if transport is not None:
            transport.abort()


class WebSocketTransport:
    """Serves the simulator's `RequestHandler` over WebSocket on ``host:port``.

    ``key`` is the gateway's WebSocket key: a client must log in with its MD5 (None accepts any
    login, as an OpenD without a key does). ``port`` 0 picks a free port; read it from ``port``
    once started.
    """

    def __init__(
        self, handler: RequestHandler, host: str, port: int, *, key: str | None = None
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._digest = websocket_key_digest(key) if key is not None else None
        self._server: Server | None = None
        self._peers: set[_Peer] = set()

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        return f"<WebSocketTransport {state} ws://{self.host}:{self.port}/ peers={len(self._peers)}>"

    @property
    def connection_count(self) -> int:
        """WebSocket connections open right now."""
        return len(self._peers)

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        if self._server is not None:
            raise RuntimeError("WebSocket transport already started")
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            max_size=MAX_MESSAGE_SIZE,
            # The SDK sends no compression offer; refusing it keeps a peer from making us inflate.
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("OpenD simulator WebSocket listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        self.drop_connections()
        await server.wait_closed()

    def drop_connections(self) -> None:
        """Abort every connection."""
        for peer in list(self._peers):
            peer.abort()

    def push(self, reply: Reply) -> None:
        """Send a push (section 0) to every logged-in connection."""
        for peer in list(self._peers):
            if peer.session.conn_id:
                self._send_later(peer, [reply], 0.0, close=False)

    # -- one connection ---------------------------------------------------------------------

    async def _serve(self, connection: ServerConnection) -> None:
        peer = _Peer(connection, self.handler.open_session())
        self._peers.add(peer)
        try:
            async for message in connection:
                if isinstance(message, str):
                    await connection.close(CloseCode.UNSUPPORTED_DATA, "binary packets only")
                    return
                try:
                    packet = decode_request(message)
                except ValueError as exc:
                    await connection.close(CloseCode.PROTOCOL_ERROR, str(exc)[:120])
                    return
                if not await self._handle(peer, packet):
                    return
        except ConnectionClosed:
            pass
        finally:
            self._peers.discard(peer)
            for task in peer.pending:
                task.cancel()

    async def _handle(self, peer: _Peer, packet: WebSocketPacket) -> bool:
        """Answer one packet; False once the connection is to be closed."""
        cmd, section, body = packet
        session = peer.session
        if cmd == INIT_WEBSOCKET:
            reply, error, ok = self._login(session, body)
            await peer.connection.send(
                encode_reply(cmd, section, reply, error=error, error_text="" if ok else "login failed")
            )
            if not ok:
                await peer.connection.close(CloseCode.POLICY_VIOLATION, "login failed")
            return ok
        if not session.conn_id:
            self.handler.stats.failed += 1
            await peer.connection.send(
                encode_reply(
                    cmd,
                    section,
                    _failure("InitWebSocket must come first"),
                    error=_ERROR_NOT_LOGGED_IN,
                    error_text="not logged in",
                )
            )
            return True
        # The handler's serials are u32 as on TCP; the section goes back by way of the mapping.
        answer = self.handler.handle(session, cmd, section & _MAX_U32, body)
        replies = [
            reply._replace(serial=_PUSH_SECTION if reply.proto_id == ProtoId.NOTIFY else section)
            for reply in answer.replies
        ]
        if answer.delay > 0:
            self._send_later(peer, replies, answer.delay, close=answer.close)
            return True
        await self._send(peer, replies)
        if answer.close:
            peer.abort()
            return False
        return True

    def _login(self, session: Session, body: bytes) -> tuple[bytes, int, bool]:
        """InitWebSocket: the reply body, the header error and whether the login succeeded."""
        request = InitWebSocket_pb2.Request()
        response = InitWebSocket_pb2.Response(retType=_RET_FAILED, errCode=_ERR_PARAM)
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError):
            response.retMsg = "malformed InitWebSocket request"
            self.handler.stats.failed += 1
            return response.SerializeToString(), _ERROR_LOGIN, False
        sent = request.c2s.websocketKey.lower()
        if self._digest is not None and not hmac.compare_digest(sent, self._digest):
            response.retMsg = (
                "websocketKey does not match this gateway's WebSocket key"
                if sent
                else "this gateway needs a WebSocket key"
            )
            self.handler.stats.failed += 1
            return response.SerializeToString(), _ERROR_LOGIN, False
        response.retType = 0
        response.ClearField("errCode")
        response.s2c.connID = self.handler.login(session)
        response.s2c.serverTime = int(time.time())
        return response.SerializeToString(), _ERROR_OK, True

    @staticmethod
    async def _send(peer: _Peer, replies: Iterable[Reply]) -> None:
        for reply in replies:
            await peer.connection.send(encode_reply(reply.proto_id, reply.serial, reply.body))

    def _send_later(self, peer: _Peer, replies: list[Reply], delay: float, *, close: bool) -> None:
        # Held replies go out in their own task so the connection keeps reading meanwhile.
        async def deliver() -> None:
            with contextlib.suppress(ConnectionClosed):
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._send(peer, replies)
            if close:
                peer.abort()

        task = asyncio.get_running_loop().create_task(deliver())
        peer.pending.add(task)
        task.add_done_callback(peer.pending.discard)
