"""One OpenD socket: InitConnect, serial-numbered requests in flight at once, keep-alive.

The connection is an ``asyncio.Protocol``: the event loop hands it every chunk the socket reads,
the `aiomoomoo._wire.FrameDecoder` turns chunks into frames and each reply resolves the
future waiting under its serial number, in whatever order replies come. Writes made in one loop
iteration leave in one ``send`` (a lone request on an idle connection goes at once). When the
socket dies every pending request fails at once with
`ConnectionLostError`. It knows proto ids and bodies, never DataFrames.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, cast

from google.protobuf.message import DecodeError

from ._crypto import ClientEncryption
from ._errors import (
    ConnectError,
    ConnectionLostError,
    MoomooError,
    ProtocolError,
    RequestTimeoutError,
    server_error,
)
from ._proto import InitConnect_pb2, KeepAlive_pb2
from ._wire import DEFAULT_MAX_BODY_SIZE, Frame, FrameDecoder, ProtoId, encode_frame

__all__ = ["PUSH_PROTO_IDS", "Connection", "ConnectionInfo"]

logger = logging.getLogger("aiomoomoo")

#: Proto ids OpenD pushes without a request; their serial numbers mean nothing.
PUSH_PROTO_IDS: Final = frozenset(
    {1003, 2208, 2218, 3005, 3007, 3009, 3011, 3013, 3015, 3019, 3261, 3310, 3450, 3451, 3452}
)
_CLIENT_VERSION: Final = 300
_NO_ENCRYPTION: Final = -1  # Common.PacketEncAlgo_None
_AES_CBC: Final = 2  # Common.PacketEncAlgo_AES_CBC
_MAX_SERIAL: Final = 0xFFFFFFFE
# OpenD asks for a KeepAlive every keepAliveInterval seconds; like the official client we send at
# 4/5 of it, and give the link up when nothing at all has arrived for 3.3 intervals (33 s at 10).
_KEEPALIVE_FRACTION: Final = 0.8
_LIVENESS_INTERVALS: Final = 3.3
_MIN_SERVER_KEEPALIVE: Final = 1.0

PushHandler = Callable[[Frame], None]
LostHandler = Callable[["Connection", BaseException], None]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What OpenD said in its InitConnect reply."""

    conn_id: int
    server_version: int
    login_user_id: int
    keepalive_interval: float
    encryption: str = "none"
    """``"none"``, ``"aes-cbc"`` or ``"aes-ecb"``: how frame bodies travel."""


class Connection(asyncio.Protocol):
    """A connected, initialised OpenD socket; create it with `open`."""

    def __init__(
        self,
        address: str,
        *,
        max_body_size: int,
        on_push: PushHandler | None,
        on_lost: LostHandler | None,
        encryption: ClientEncryption | None = None,
    ) -> None:
        self.address = address
        self.info: ConnectionInfo | None = None
        self._encryption = encryption
        decrypt = encryption.decrypt if encryption is not None else None
        self._decoder = FrameDecoder(max_body_size=max_body_size, decrypt=decrypt)
        self._on_push = on_push
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        # serial -> (proto id, future); None for replies nobody waits for (KeepAlive).
        self._pending: dict[int, tuple[int, asyncio.Future[Frame] | None]] = {}
        self._serial = random.randrange(1, 1 << 31)
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._can_write: asyncio.Future[None] | None = None
        self._lost: ConnectionLostError | None = None
        self._last_received = self._loop.time()
        self._keepalive: asyncio.TimerHandle | None = None
        self._keepalive_period = 0.0
        self._keepalive_serial: int | None = None
        self.requests_sent = 0
        self.pushes_received = 0

    def __repr__(self) -> str:
        state = "lost" if self._lost is not None else ("ready" if self.info else "connecting")
        conn_id = self.info.conn_id if self.info else None
        return (
            f"<Connection {self.address} {state} conn_id={conn_id} "
            f"pending={len(self._pending)} sent={self.requests_sent}>"
        )

    @property
    def is_ready(self) -> bool:
        """Connected, initialised and not lost."""
        return self.info is not None and self._lost is None

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        client_id: str,
        keepalive_interval: float | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        on_push: PushHandler | None = None,
        on_lost: LostHandler | None = None,
        encryption: ClientEncryption | None = None,
    ) -> Connection:
        """Connect, send InitConnect and start the keep-alive; raise `ConnectError`.

        ``keepalive_interval`` overrides the interval OpenD advertises (for tests that want to see
        keep-alive work in milliseconds). ``encryption``, a fresh `ClientEncryption` per
        connection, encrypts InitConnect with RSA and everything after with AES.
        """
        loop = asyncio.get_running_loop()
        address = f"{host}:{port}"
        connection = cls(
            address, max_body_size=max_body_size, on_push=None, on_lost=None, encryption=encryption
        )
        # Said with every InitConnect failure while encrypting: the usual cause is a key mismatch.
        hint = (
            " (is OpenD configured with the same RSA private key?)"
            if encryption is not None
            else ""
        )
        stage = "accept the connection"
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: connection, host, port)
                stage = "complete InitConnect"
                body = InitConnect_pb2.Request(
                    c2s=InitConnect_pb2.C2S(
                        clientVer=_CLIENT_VERSION,
                        clientID=client_id,
                        recvNotify=True,
                        # Like the official client, ask for CBC; OpenD answers with its IV, or
                        # without one for its ECB flavour.
                        packetEncAlgo=_AES_CBC if encryption is not None else _NO_ENCRYPTION,
                        pushProtoFmt=0,
                        programmingLanguage="Python",
                    )
                ).SerializeToString()
                frame = await connection.request(ProtoId.INIT_CONNECT, body, timeout=None)
        except TimeoutError:
            connection.close()
            why = hint if stage == "complete InitConnect" else ""
            raise ConnectError(
                f"OpenD at {address} did not {stage} within {timeout:g} s{why}"
            ) from None
        except MoomooError as exc:
            connection.close()
            raise ConnectError(f"OpenD at {address} broke off InitConnect: {exc}{hint}") from exc
        except OSError as exc:
            # After MoomooError: a lost connection is a ConnectionError, hence an OSError, too.
            connection.close()
            reason = exc.strerror or exc
            raise ConnectError(
                f"cannot connect to OpenD at {address}: {reason}. Is OpenD running and logged "
                "in? Start it, or try `aiomoomoo short-interest --demo` for the built-in simulator"
            ) from exc
        except BaseException:
            connection.close()
            raise
        try:
            reply = InitConnect_pb2.Response.FromString(frame.body)
        except DecodeError as exc:
            connection.close()
            raise ConnectError(
                f"OpenD at {address} sent an unreadable InitConnect reply{hint}"
            ) from exc
        if reply.retType != 0:
            connection.close()
            error = server_error(
                reply.retMsg,
                ret_type=reply.retType,
                err_code=reply.errCode if reply.HasField("errCode") else None,
                proto_id=ProtoId.INIT_CONNECT,
            )
            raise ConnectError(f"OpenD at {address} refused InitConnect: {error}") from error
        if not reply.HasField("s2c"):
            connection.close()
            raise ConnectError(
                f"OpenD at {address} accepted InitConnect but sent no connection data"
            )
        s2c = reply.s2c
        server_interval = max(float(s2c.keepAliveInterval), _MIN_SERVER_KEEPALIVE)
        connection.info = ConnectionInfo(
            conn_id=s2c.connID,
            server_version=s2c.serverVer,
            login_user_id=s2c.loginUserID,
            keepalive_interval=keepalive_interval or server_interval,
            encryption=(encryption.mode or "none") if encryption is not None else "none",
        )
        connection._on_push = on_push
        connection._on_lost = on_lost
        if connection._lost is not None:
            # It died between the reply and now, before anyone was listening for that.
            raise ConnectError(f"OpenD at {address} dropped the connection right after InitConnect")
        connection._start_keepalive()
        logger.debug("connected to OpenD %s, conn_id=%d", address, s2c.connID)
        return connection

    # -- requests ---------------------------------------------------------------------------

    def _next_serial(self) -> int:
        serial = self._serial
        while True:
            serial = serial + 1 if serial < _MAX_SERIAL else 1
            if serial not in self._pending:
                self._serial = serial
                return serial

    async def request(self, proto_id: int, body: bytes, *, timeout: float | None) -> Frame:
        """Send one request and return its reply frame.

        Raises `RequestTimeoutError` after ``timeout`` seconds (None waits for ever) and
        `ConnectionLostError` if the socket dies first. Cancelling the caller forgets the
        request: a late reply to it is discarded.
        """
        if self._can_write is not None and not self._can_write.done():
            # OpenD is not reading: wait, but no longer than the request may take in all.
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._can_write)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"OpenD at {self.address} did not read proto {proto_id} within {timeout:g} s"
                ) from None
        # Checked after the wait too: losing the socket also wakes the writers paused above,
        # and a request registered after that would never be answered nor failed.
        if self._lost is not None:
            raise ConnectionLostError(str(self._lost)) from self._lost.__cause__
        serial = self._next_serial()
        future: asyncio.Future[Frame] = self._loop.create_future()
        self._pending[serial] = (proto_id, future)
        self._write(self._encode(proto_id, serial, body))
        self.requests_sent += 1
        timer = (
            self._loop.call_later(timeout, self._time_out, serial, timeout)
            if timeout is not None
            else None
        )
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.pop(serial, None)

    def _encode(self, proto_id: int, serial: int, body: bytes) -> bytes:
        encryption = self._encryption
        if encryption is None:
            return encode_frame(proto_id, serial, body)
        return encode_frame(proto_id, serial, body, encrypt=partial(encryption.encrypt, proto_id))

    def _time_out(self, serial: int, timeout: float) -> None:
        entry = self._pending.pop(serial, None)
        if entry is not None and entry[1] is not None and not entry[1].done():
            entry[1].set_exception(
                RequestTimeoutError(
                    f"OpenD at {self.address} did not answer proto {entry[0]} "
                    f"(serial {serial}) within {timeout:g} s"
                )
            )

    def _write(self, data: bytes) -> None:
        if not self._flush_scheduled and len(self._pending) <= 1 and self._transport is not None:
            # A lone request on an idle connection: nothing to batch it with, so sending now
            # saves the extra loop iteration a deferred flush costs.
            self._transport.write(data)
            return
        self._outgoing.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is None or self._lost is not None or not self._outgoing:
            self._outgoing.clear()
            return
        data = b"".join(self._outgoing) if len(self._outgoing) > 1 else self._outgoing[0]
        self._outgoing.clear()
        self._transport.write(data)

    # -- keep-alive -------------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        assert self.info is not None
        self._keepalive_period = self.info.keepalive_interval * _KEEPALIVE_FRACTION
        self._keepalive = self._loop.call_later(self._keepalive_period, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        if self._lost is not None or self.info is None:
            return
        silent = self._loop.time() - self._last_received
        limit = self.info.keepalive_interval * _LIVENESS_INTERVALS
        if silent >= limit:
            self.abort(
                ConnectionLostError(
                    f"OpenD at {self.address} sent nothing for {silent:.1f} s "
                    f"(keep-alive limit {limit:g} s)"
                )
            )
            return
        c2s = KeepAlive_pb2.C2S(time=int(time.time()))
        body = KeepAlive_pb2.Request(c2s=c2s).SerializeToString()
        # Only the newest KeepAlive is remembered: any reply proves liveness, and forgetting the
        # older ones keeps an OpenD that never answers them from growing the pending table.
        if self._keepalive_serial is not None:
            self._pending.pop(self._keepalive_serial, None)
        serial = self._keepalive_serial = self._next_serial()
        self._pending[serial] = (ProtoId.KEEP_ALIVE, None)
        self._write(self._encode(ProtoId.KEEP_ALIVE, serial, body))
        self._keepalive = self._loop.call_later(self._keepalive_period, self._keepalive_tick)

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; pending requests fail with `ConnectionLostError`."""
        error = ConnectionLostError(f"connection to OpenD at {self.address} was closed")
        self.abort(error, graceful=True)

    def abort(self, error: ConnectionLostError | ProtocolError, *, graceful: bool = False) -> None:
        """Drop the connection now, failing every pending request with ``error``'s kind."""
        if self._lost is None:
            self._lose(error)
        if self._transport is not None:
            if graceful:
                self._flush()
                self._transport.close()
            else:
                self._transport.abort()

    def _lose(self, error: ConnectionLostError | ProtocolError) -> None:
        if isinstance(error, ConnectionLostError):
            self._lost = error
        else:
            # A broken peer: its waiters learn it is a protocol error (not retried); later
            # requests on this dead connection just see it lost.
            self._lost = ConnectionLostError(str(error))
            self._lost.__cause__ = error
        if self._keepalive is not None:
            self._keepalive.cancel()
        pending, self._pending = self._pending, {}
        for _, future in pending.values():
            if future is not None and not future.done():
                # One exception object per waiter (each gets its own traceback), same cause.
                failure = type(error)(str(error))
                failure.__cause__ = error.__cause__
                future.set_exception(failure)
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self, error)

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not subclass asyncio's.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            reason = f": {exc}" if exc else " (closed by OpenD)"
            error = ConnectionLostError(f"connection to OpenD at {self.address} lost{reason}")
            error.__cause__ = exc
            self._lose(error)

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            error = ProtocolError(f"OpenD at {self.address} broke the protocol: {exc}")
            error.__cause__ = exc
            self.abort(error)
            return
        self._last_received = self._loop.time()
        pending = self._pending
        for frame in frames:
            if frame.proto_id in PUSH_PROTO_IDS:
                self.pushes_received += 1
                if self._on_push is not None:
                    self._on_push(frame)
                continue
            entry = pending.pop(frame.serial, None)
            if entry is None:
                logger.debug(
                    "discarding reply to proto %d serial %d: nobody waits for it (timed out or "
                    "cancelled)",
                    frame.proto_id,
                    frame.serial,
                )
                continue
            proto_id, future = entry
            if proto_id != frame.proto_id:
                self.abort(
                    ProtocolError(
                        f"OpenD at {self.address} answered serial {frame.serial} with proto "
                        f"{frame.proto_id}, but it was a request for proto {proto_id}"
                    )
                )
                return
            if future is not None and not future.done():
                future.set_result(frame)
