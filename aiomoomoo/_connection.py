"""One OpenD socket: InitConnect, serial-numbered requests in flight at once, keep-alive.

The connection is an ``asyncio.Protocol``: the event loop hands it every chunk the socket reads,
the `aiomoomoo._wire.FrameDecoder` turns chunks into frames and each reply, decoded by the
request's own `aiomoomoo._messages` function, resolves the future waiting under its serial, in
whatever order replies come. Writes made in one loop iteration leave in one ``send``.

Anything malformed (a bad header or checksum, an undecodable body, a reply of the wrong proto id)
breaks the stream: the connection is dropped and every pending request fails at once, each
with the same kind of error. Liveness counts whole frames: a peer that trickles bytes of a frame
it never finishes is as silent as one that sends nothing. It knows proto ids and bodies, never
DataFrames, and never decides whether to retry.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar, cast

from . import _messages
from ._budget import NO_BUDGET, NO_SLOT, Budget, QuotaSlot
from ._crypto import ClientEncryption
from ._errors import (
    ConnectionLostError,
    MoomooError,
    ProtocolError,
    RequestTimeoutError,
)
from ._wire import Frame, FrameDecoder, ProtoId, encode_frame

__all__ = ["PUSH_PROTO_IDS", "Connection", "ConnectionInfo", "NotSentError", "State"]

logger = logging.getLogger("aiomoomoo")

T = TypeVar("T")

#: Proto ids OpenD pushes without a request; their serial numbers mean nothing.
PUSH_PROTO_IDS: Final = frozenset(
    {1003, 2208, 2218, 3005, 3007, 3009, 3011, 3013, 3015, 3019, 3261, 3310, 3450, 3451, 3452}
)
_MAX_SERIAL: Final = 0xFFFFFFFE
# OpenD asks for a KeepAlive every keepAliveInterval seconds; like the official client we send at
# 4/5 of it, and give the link up when no whole frame has arrived for 3.3 intervals.
KEEPALIVE_FRACTION: Final = 0.8
LIVENESS_INTERVALS: Final = 3.3

PushHandler = Callable[[Frame], None]
LostHandler = Callable[["Connection", MoomooError], None]


class NotSentError(ConnectionLostError):
    """The connection was lost before the request was written: OpenD never saw it."""


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


class _Pending:
    """A request on the wire: who waits (None for KeepAlive), how to read the reply, its slot
    and its time."""

    __slots__ = ("budget", "decode", "future", "proto_id", "seq", "slot")

    def __init__(
        self,
        proto_id: int,
        future: asyncio.Future[Any] | None,
        decode: Callable[[bytes], Any],
        slot: QuotaSlot,
        seq: int,
        budget: Budget = NO_BUDGET,
    ) -> None:
        self.proto_id = proto_id
        self.future = future
        self.decode = decode
        self.slot = slot
        self.seq = seq
        self.budget = budget


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
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, _Pending] = {}
        # Requests that timed out or were cancelled after they left: OpenD may still process
        # them, so their quota slots are released only once it is provably past them.
        self._unsettled: dict[int, _Pending] = {}
        self._serial = random.randrange(1, 1 << 31)
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._can_write: asyncio.Future[None] | None = None
        self._lost: MoomooError | None = None
        self.opened_at = self._last_frame = self._loop.time()
        self._keepalive: asyncio.TimerHandle | None = None
        self._liveness: asyncio.TimerHandle | None = None
        self._keepalive_serial: int | None = None
        # One timer for every request's deadline, set for the earliest: a request does not
        # schedule and cancel a timer of its own (most replies come long before the deadline).
        self._deadlines: asyncio.TimerHandle | None = None
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

    def _next_serial(self) -> int:
        serial = self._serial
        while True:
            serial = serial + 1 if serial < _MAX_SERIAL else 1
            if serial not in self._pending and serial not in self._unsettled:
                self._serial = serial
                return serial

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
        serial = self._next_serial()
        future: asyncio.Future[T] = self._loop.create_future()
        entry = _Pending(proto_id, future, decode, slot, self.requests_sent, budget)
        self._pending[serial] = entry
        self._write(self._encode(proto_id, serial, body))
        self.requests_sent += 1
        if deadline is not None:
            timer = self._deadlines
            if timer is None or deadline < timer.when():
                if timer is not None:
                    timer.cancel()
                self._deadlines = self._loop.call_at(deadline, self._expire)
        try:
            return await future
        finally:
            if self._pending.get(serial) is entry:
                # Left without its reply (timed out, or the caller was cancelled).
                del self._pending[serial]
                self._unsettled[serial] = entry

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
            slot._give_back()
            raise

    def _encode(self, proto_id: int, serial: int, body: bytes) -> bytes:
        encryption = self._encryption
        if encryption is None:
            return encode_frame(proto_id, serial, body)
        return encode_frame(proto_id, serial, body, encrypt=partial(encryption.encrypt, proto_id))

    def _expire(self) -> None:
        """Fail every request past its deadline; set the timer for the earliest one left."""
        self._deadlines = None
        now = self._loop.time()
        earliest: float | None = None
        for serial, entry in self._pending.items():
            future, deadline = entry.future, entry.budget.deadline
            if future is None or deadline is None or future.done():
                continue
            if deadline <= now:
                future.set_exception(
                    RequestTimeoutError(
                        f"OpenD at {self.address} did not answer proto {entry.proto_id} "
                        f"(serial {serial}) within {entry.budget}"
                    )
                )
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._deadlines = self._loop.call_at(earliest, self._expire)

    def _settle(self, serial: int, seq: int) -> None:
        """OpenD answered the request sent ``seq``-th: release the slots of those before it."""
        late = self._unsettled.pop(serial, None)
        if late is not None:
            late.slot._release()
        for other in [s for s, e in self._unsettled.items() if e.seq < seq]:
            self._unsettled.pop(other).slot._release()

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

    # -- keep-alive and liveness ------------------------------------------------------------

    def start_keepalive(self) -> None:
        assert self.info is not None
        interval = self.info.keepalive_interval
        self._keepalive = self._loop.call_later(interval * KEEPALIVE_FRACTION, self._keepalive_tick)
        self._liveness = self._loop.call_at(
            self._last_frame + interval * LIVENESS_INTERVALS, self._check_liveness
        )

    def _keepalive_tick(self) -> None:
        if self._lost is not None or self.info is None:
            return
        # Only the newest KeepAlive is remembered: any reply proves liveness, and forgetting the
        # older ones keeps an OpenD that never answers them from growing the pending table.
        if self._keepalive_serial is not None:
            self._pending.pop(self._keepalive_serial, None)
        serial = self._keepalive_serial = self._next_serial()
        self._pending[serial] = _Pending(
            ProtoId.KEEP_ALIVE, None, _messages.decode_keepalive, NO_SLOT, self.requests_sent
        )
        self._write(self._encode(ProtoId.KEEP_ALIVE, serial, _messages.keepalive_request()))
        interval = self.info.keepalive_interval
        self._keepalive = self._loop.call_later(interval * KEEPALIVE_FRACTION, self._keepalive_tick)

    def _check_liveness(self) -> None:
        if self._lost is not None or self.info is None:
            return
        limit = self.info.keepalive_interval * LIVENESS_INTERVALS
        silent = self._loop.time() - self._last_frame
        if silent >= limit:
            self.abort(
                ConnectionLostError(
                    f"OpenD at {self.address} sent no whole frame for {silent:.1f} s "
                    f"(sent nothing for the keep-alive limit of {limit:g} s)"
                )
            )
            return
        self._liveness = self._loop.call_at(self._last_frame + limit, self._check_liveness)

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
        for timer in (self._keepalive, self._liveness, self._deadlines):
            if timer is not None:
                timer.cancel()
        pending, self._pending = self._pending, {}
        unsettled, self._unsettled = self._unsettled, {}
        self.in_flight_at_loss = sum(
            1 for e in pending.values() if e.future is not None and not e.future.done()
        )
        for entry in (*pending.values(), *unsettled.values()):
            entry.slot._release()  # the connection's end: OpenD is past everything sent on it
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
        try:
            frames = self._decoder.feed(data)
            if frames:
                self._last_frame = self._loop.time()
            for frame in frames:
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
        entry = self._pending.get(serial)
        if entry is None:
            entry = self._unsettled.get(serial)
            if entry is None:
                logger.debug(
                    "discarding reply to proto %d serial %d: nobody waits for it",
                    frame.proto_id,
                    serial,
                )
                return
        if entry.proto_id != frame.proto_id:
            raise ProtocolError(
                f"OpenD answered serial {serial}, a request for proto {entry.proto_id}, "
                f"with proto {frame.proto_id}"
            )
        value = entry.decode(frame.body)  # a ProtocolError breaks the connection
        if self._unsettled:
            self._settle(serial, entry.seq)
        if self._pending.pop(serial, None) is None:
            logger.debug(
                "discarding reply to proto %d serial %d: nobody waits for it (timed out or "
                "cancelled)",
                frame.proto_id,
                serial,
            )
            return
        entry.slot._release()
        future = entry.future
        if future is not None and not future.done():
            if self.info is not None:  # InitConnect's own reply proves nothing yet
                self.replies += 1
            future.set_result(value)
