"""One OpenD socket: InitConnect, serial-numbered requests in flight at once, keep-alive.

The connection is an ``asyncio.Protocol``: the event loop hands it every chunk the socket reads,
it takes frames from the `aiomoomoo._wire.FrameDecoder` one at a time (InitConnect's reply
installs the AES key before the next is decrypted) and each reply, decoded by the request's own
`aiomoomoo._messages` function, resolves the future waiting under its serial, in whatever order
replies come. Writes made in one loop iteration leave in one ``send``.

Anything malformed (a bad header or checksum, an undecodable body, a reply of the wrong proto id)
breaks the stream: the connection is dropped and every pending request fails at once, each
with the same kind of error. `aiomoomoo._keepalive` keeps it alive. It knows proto ids and
bodies, never DataFrames, and never decides whether to retry.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeVar, cast

from . import _messages
from ._budget import NO_BUDGET, NO_SLOT, Budget, QuotaSlot
from ._crypto import ClientEncryption
from ._errors import (
    ConnectionLostError,
    MoomooError,
    NotSentError,
    ProtocolError,
    RequestTimeoutError,
)
from ._inflight import InFlight, Pending
from ._keepalive import Heartbeat
from ._wire import Frame, FrameDecoder, ProtoId, encode_frame

__all__ = [
    "PUSH_PROTO_IDS",
    "Connection",
    "ConnectionInfo",
    "State",
]

logger = logging.getLogger("aiomoomoo")

T = TypeVar("T")

#: Proto ids OpenD pushes without a request; their serial numbers mean nothing.
PUSH_PROTO_IDS: Final = frozenset(
    {1003, 2208, 2218, 3005, 3007, 3009, 3011, 3013, 3015, 3019, 3261, 3310, 3450, 3451, 3452}
)

PushHandler = Callable[[Frame], None]
LostHandler = Callable[["Connection", MoomooError], None]
PassedHandler = Callable[["Connection"], None]


class State(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    READY = "ready"
    LOST = "lost"


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
    """One OpenD socket; `aiomoomoo._handshake.open_connection` opens and initialises it."""

    def __init__(
        self, address: str, *, max_body_size: int, encryption: ClientEncryption | None = None
    ) -> None:
        self.address = address
        self.info: ConnectionInfo | None = None
        self._encryption = encryption
        decrypt = encryption.decrypt if encryption is not None else None
        self._decoder = FrameDecoder(max_body_size=max_body_size, decrypt=decrypt)
        self.on_push: PushHandler | None = None
        self.on_lost: LostHandler | None = None
        self.on_passed: PassedHandler | None = None
        """Called when a KeepAlive reply shows OpenD went past a request it has not answered."""
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._inflight = InFlight(address)
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._can_write: asyncio.Future[None] | None = None
        self._lost: MoomooError | None = None
        self.opened_at = self._last_frame = self._loop.time()
        self._heartbeat: Heartbeat | None = None
        self._keepalive_serial: int | None = None
        self._keepalive_answered = -1  # the place among requests of the last KeepAlive answered
        self.requests_sent = 0
        self.replies = 0
        """Replies that reached a waiting request: a connection that served one proved itself."""
        self.in_flight_at_loss = 0
        """How many requests were waiting for their reply when the connection was lost."""
        self.pushes_received = 0

    def __repr__(self) -> str:
        conn_id = self.info.conn_id if self.info else None
        return (
            f"<Connection {self.address} {self.state.value} conn_id={conn_id} "
            f"pending={len(self._pending)} sent={self.requests_sent}>"
        )

    @property
    def state(self) -> State:
        """Where the connection is: connecting until InitConnect's reply, then ready, then lost."""
        if self._lost is not None:
            return State.LOST
        return State.READY if self.info is not None else State.CONNECTING

    @property
    def is_ready(self) -> bool:
        """Connected, initialised and not lost."""
        return self.info is not None and self._lost is None

    @property
    def lost_error(self) -> MoomooError | None:
        """Why the connection was lost (a `ConnectionLostError` or `ProtocolError`), or None."""
        return self._lost

    # -- requests ---------------------------------------------------------------------------

    @property
    def _pending(self) -> dict[int, Pending]:
        """Requests waiting for their reply, by serial."""
        return self._inflight.pending

    async def request(
        self,
        proto_id: int,
        body: bytes,
        *,
        decode: Callable[[bytes], T],
        budget: Budget = NO_BUDGET,
        slot: QuotaSlot = NO_SLOT,
    ) -> T:
        """Send one request and return its reply, read by ``decode``.

        Waiting for the socket to take the write and for the reply both spend ``budget``; past
        its deadline `RequestTimeoutError` is raised. `ConnectionLostError` (or `ProtocolError`)
        if the connection breaks first. The request owns ``slot``: it is given back if the
        request never left, released when the reply comes or the connection ends, and held
        while a request that timed out or was cancelled may still be processed by OpenD.
        """
        deadline = budget.deadline
        if (
            (deadline is not None and self._loop.time() >= deadline)
            or (self._can_write is not None and not self._can_write.done())
            or self._lost is not None
        ):
            await self._before_sending(proto_id, budget, slot)
        inflight = self._inflight
        serial = inflight.next_serial()
        future: asyncio.Future[T] = self._loop.create_future()
        entry = Pending(proto_id, future, decode, slot, self.requests_sent, budget)
        inflight.add(serial, entry)
        self._write(self._encode(proto_id, serial, body))
        self.requests_sent += 1
        try:
            return await future
        finally:
            inflight.left(serial, entry)  # unsettled if it timed out or was cancelled

    async def _before_sending(self, proto_id: int, budget: Budget, slot: QuotaSlot) -> None:
        """The slow path: a spent budget, a socket not taking writes, or a lost connection."""
        try:
            if budget.deadline is not None and self._loop.time() >= budget.deadline:
                # Spent on reconnects already: sending now would only load OpenD for nothing.
                raise RequestTimeoutError(
                    f"OpenD at {self.address} could not be asked proto {proto_id} within {budget}"
                )
            if self._can_write is not None and not self._can_write.done():
                # OpenD is not reading: wait, but no longer than the request may take in all.
                try:
                    async with asyncio.timeout_at(budget.deadline):
                        await asyncio.shield(self._can_write)
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"OpenD at {self.address} did not read proto {proto_id} within {budget}"
                    ) from None
            # Checked after the wait too: losing the socket also wakes the writers paused above.
            if self._lost is not None:
                raise NotSentError(str(self._lost)) from self._lost.__cause__
        except BaseException:
            slot.give_back()
            raise

    def _encode(self, proto_id: int, serial: int, body: bytes) -> bytes:
        encryption = self._encryption
        if encryption is None:
            return encode_frame(proto_id, serial, body)
        return encode_frame(proto_id, serial, body, encrypt=partial(encryption.encrypt, proto_id))

    def _write(self, data: bytes) -> None:
        if not self._flush_scheduled and len(self._pending) <= 1 and self._transport is not None:
            # A lone request on an idle connection: nothing to batch it with.
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

    # -- keep-alive -----------------------------------------------------------------------

    @property
    def last_frame(self) -> float:
        """When (loop time) the last whole frame arrived, or the connection was opened."""
        return self._last_frame

    def start_keepalive(self) -> None:
        """Start the `Heartbeat`: KeepAlives and the liveness check (after InitConnect)."""
        assert self.info is not None
        self._heartbeat = Heartbeat(self, self.info.keepalive_interval)
        self._heartbeat.start()

    def send_keepalive(self) -> None:
        """Send one KeepAlive (the `Heartbeat` calls this); no request waits for its reply."""
        # Only the newest KeepAlive is remembered: any reply proves liveness, and forgetting the
        # older ones keeps an OpenD that never answers them from growing the pending table.
        if self._keepalive_serial is not None:
            self._pending.pop(self._keepalive_serial, None)
        serial = self._keepalive_serial = self._inflight.next_serial()
        self._pending[serial] = Pending(
            ProtoId.KEEP_ALIVE, None, _messages.decode_keepalive, NO_SLOT, self.requests_sent
        )
        self._write(self._encode(ProtoId.KEEP_ALIVE, serial, _messages.keepalive_request()))

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; pending requests fail with `ConnectionLostError`."""
        error = ConnectionLostError(f"connection to OpenD at {self.address} was closed")
        self.abort(error, graceful=True)

    def abort(self, error: MoomooError, *, graceful: bool = False) -> None:
        """Drop the connection now, failing every pending request with ``error``'s kind."""
        if self._lost is None:
            self._lose(error)
        if self._transport is not None:
            if graceful:
                self._flush()
                self._transport.close()
            else:
                self._transport.abort()

    @staticmethod
    def _failure(error: MoomooError) -> MoomooError:
        # One exception object per waiter (each gets its own traceback), same message and cause.
        failure = type(error)(str(error))
        failure.__cause__ = error.__cause__
        return failure

    def _lose(self, error: MoomooError) -> None:
        self._lost = error
        if self._heartbeat is not None:
            self._heartbeat.stop()
        entries = self._inflight.take_all()
        # Only requests still waiting count: an unsettled one's caller has left already.
        self.in_flight_at_loss = sum(
            1 for e in entries if e.future is not None and not e.future.done()
        )
        for entry in entries:
            entry.slot.release()  # the connection's end: OpenD is past everything sent on it
            if entry.future is not None and not entry.future.done():
                entry.future.set_exception(self._failure(error))
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if self.on_lost is not None:
            self.on_lost(self, error)

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
        decoder = self._decoder
        try:
            decoder.receive(data)
            # One at a time: InitConnect's reply installs the key of the frame behind it.
            while (frame := decoder.next_frame()) is not None:
                self._last_frame = self._loop.time()
                if self._lost is not None:
                    return
                self._dispatch(frame)
        except ProtocolError as exc:
            error = ProtocolError(f"OpenD at {self.address} broke the protocol: {exc}")
            error.__cause__ = exc
            self.abort(error)

    def _dispatch(self, frame: Frame) -> None:
        if frame.proto_id in PUSH_PROTO_IDS:
            self.pushes_received += 1
            if self.on_push is not None:
                self.on_push(frame)
            return
        serial = frame.serial
        inflight = self._inflight
        entry = inflight.pending.get(serial) or inflight.unsettled.get(serial)
        if entry is None:
            logger.debug(
                "discarding reply to proto %d serial %d: nobody asked", frame.proto_id, serial
            )
            return
        if entry.proto_id != frame.proto_id:
            raise ProtocolError(
                f"OpenD answered serial {serial}, a request for proto {entry.proto_id}, "
                f"with proto {frame.proto_id}"
            )
        if (
            entry.proto_id == ProtoId.INIT_CONNECT
            and self._encryption is not None
            and (aes := _messages.init_connect_aes_key(frame.body)) is not None
        ):
            self._encryption.use_aes(*aes)
        value = entry.decode(frame.body)  # a ProtocolError breaks the connection
        if inflight.unsettled:
            inflight.settle(serial, entry.seq)
        if inflight.pending.pop(serial, None) is None:
            logger.debug(
                "discarding reply to proto %d serial %d: nobody waits for it (timed out or "
                "cancelled)",
                frame.proto_id,
                serial,
            )
            return
        entry.slot.release()
        future = entry.future
        if future is None:
            # A KeepAlive reply. A request sent before the KeepAlive answered last time, and still
            # unanswered, has been passed by two: OpenD is alive and left it behind. (One is no
            # proof: a gateway may answer a KeepAlive before a request still being processed.)
            passed, self._keepalive_answered = self._keepalive_answered, entry.seq
            if self.on_passed is not None and any(
                e.seq < passed and e.future is not None for e in inflight.pending.values()
            ):
                self.on_passed(self)
        elif not future.done():
            if self.info is not None:  # InitConnect's own reply proves nothing yet
                self.replies += 1
            future.set_result(value)
