"""One client connection, whatever transport carries it: its session and its outbox.

A transport subclasses `Link`: it decodes requests from its stream, passes each
`Answer` of the request handler to `Link.answer`, and supplies three things: how a `Reply`
becomes bytes (`Link.encode`), how a batch of encoded messages is written (`Link.write`, which
waits for the peer to take them), and how the connection is torn down (`Link.abort_transport`).

The outbox applies the timing faults every transport shares (reply delays, the reorder window)
and keeps the back-pressure: ``pending`` counts the bytes accepted for sending but not yet taken
by the peer, and a transport's read loop awaits `Link.wait_writable` before reading on, so a
client that sends and never reads stops being read instead of growing the simulator's memory.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Final

from ._handler import Answer, Reply, RequestHandler, Session
from ._stats import DEFAULT_LIMITS, SimulatorStats

__all__ = ["DEFAULT_MAX_PENDING", "Link", "LinkSet"]

logger = logging.getLogger("aiomoomoo.testing")

#: Bytes of replies a connection may hold for a peer that does not read (`Limits.max_pending`).
DEFAULT_MAX_PENDING: Final = DEFAULT_LIMITS.max_pending
# Queue markers: close once what comes before has been written, or abort then.
_CLOSE: Final = "close"
_ABORT: Final = "abort"


class Link(abc.ABC):
    """The transport-neutral half of one connection; see the module docstring."""

    def __init__(
        self,
        handler: RequestHandler,
        session: Session,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.handler = handler
        self.session = session
        self.max_pending = max_pending
        self.closed = False
        #: Bytes encoded for the peer and not yet taken by it (held, queued or being written).
        self.pending = 0
        self._queue: collections.deque[list[bytes] | str] = collections.deque()
        self._writing = False
        self._queued = asyncio.Event()
        self._relieved = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._held: list[bytes] = []
        self._close_after_held = False

    # -- what a transport supplies ----------------------------------------------------------

    @abc.abstractmethod
    def encode(self, reply: Reply) -> bytes:
        """``reply`` as one message on this transport."""

    @abc.abstractmethod
    async def write(self, messages: list[bytes]) -> None:
        """Write ``messages`` in order and wait until the transport can take more."""

    @abc.abstractmethod
    def abort_transport(self) -> None:
        """Tear the connection down at once."""

    async def close_transport(self) -> None:
        """Close the connection after what was written; by default the same as aborting."""
        self.abort_transport()

    def write_now(self, messages: list[bytes]) -> bool:
        """Write ``messages`` without waiting, if the transport can take them; else False."""
        return False

    # -- sending ----------------------------------------------------------------------------

    def answer(self, answer: Answer) -> None:
        """Send ``answer``'s replies, encoded now so they keep their order, after its delay."""
        if self.closed:
            return
        if answer.close and not answer.replies:
            # Whatever was answered before still goes out first, as it would from a gateway.
            self._enqueue(_ABORT)
            return
        messages = [self.encode(reply) for reply in answer.replies]
        self.pending += sum(map(len, messages))
        if answer.delay > 0:
            self._later(answer.delay, lambda: self._release(messages, answer.close))
        else:
            self._release(messages, answer.close)

    def push(self, reply: Reply) -> None:
        """Send a push at once, past any delay or reorder window."""
        if not self.closed:
            message = self.encode(reply)
            self.pending += len(message)
            self._enqueue([message])

    async def wait_writable(self) -> None:
        """Return once the peer has taken enough that at most ``max_pending`` bytes wait."""
        while self.pending > self.max_pending and not self.closed:
            self._relieved.clear()
            await self._relieved.wait()

    def abort(self) -> None:
        """Drop the connection and everything still waiting to be sent."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._queue.clear()
        self._held.clear()
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        self._relieved.set()
        self.abort_transport()

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        def fire() -> None:
            self._timers.discard(timer)
            callback()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    def _release(self, messages: list[bytes], close: bool) -> None:
        window = self.handler.faults.reorder_window
        if window is None:
            self._enqueue(messages)
            if close:
                self._enqueue(_CLOSE)
            return
        if not self._held and not self._close_after_held:
            self._later(window, self._flush_held)
        self._held.extend(messages)
        self._close_after_held |= close

    def _flush_held(self) -> None:
        held, self._held = self._held, []
        self._enqueue(held[::-1])
        if self._close_after_held:
            self._close_after_held = False
            self._enqueue(_CLOSE)

    def _enqueue(self, messages: list[bytes] | str) -> None:
        if self.closed:
            return
        if not self._queue and not self._writing:
            # The usual case, nothing queued: straight to the transport, or close at once.
            if messages is _ABORT:
                self.abort()
                return
            if isinstance(messages, list) and self.write_now(messages):
                self._sent(messages)
                return
        self._queue.append(messages)
        self._queued.set()
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        try:
            while not self.closed:
                if not self._queue:
                    self._queued.clear()
                    await self._queued.wait()
                    continue
                messages = self._queue.popleft()
                if messages is _ABORT:
                    break
                if messages is _CLOSE:
                    await self.close_transport()
                    break
                assert isinstance(messages, list)
                self._writing = True
                await self.write(messages)
                self._writing = False
                self._sent(messages)
        except Exception as exc:  # a peer gone mid-write: nothing to tell it any more
            logger.debug("simulator lost a connection while writing: %r", exc)
        self.abort()

    def _sent(self, messages: list[bytes]) -> None:
        self.pending -= sum(map(len, messages))
        self._relieved.set()


class LinkSet(set[Link]):
    """The simulator's open connections, over every transport, with their limit.

    A transport calls `admit` for each new connection and serves it only if that returns True;
    it ``discard``s it when it ends.
    """

    def __init__(self, stats: SimulatorStats, max_connections: int | None) -> None:
        super().__init__()
        self.stats = stats
        self.max_connections = max_connections

    def admit(self, link: Link) -> bool:
        """Add ``link``; False (and counted in ``stats.refused_connections``) if over the limit."""
        limit = self.max_connections
        if limit is not None and len(self) >= limit:
            self.stats.refused_connections += 1
            logger.info("simulator refusing a connection: %d are open already", limit)
            return False
        self.add(link)
        return True
