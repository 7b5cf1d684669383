"""The session: the client's current connection, reconnects, retries and one deadline per request.

`Session.request` is the one way a request reaches OpenD: it waits for a quota slot, a ready
connection with room in its slow-start window, then the reply, all within one `Budget`; it
resends after a drop as the `RetryPolicy` allows, and waits out OpenD's own rate-limit refusals.
`Session.close` ends every request of the client at once, wherever it waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from . import _messages
from ._budget import NO_SLOT, Budget, QuotaSlot
from ._connection import Connection
from ._crypto import ClientEncryption
from ._errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    NotSentError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
)
from ._handshake import open_connection
from ._options import ClientOptions
from ._rate_limit import Limiter, adopt_server_budget, first_refusal_pause, grants_at_once
from ._retry import RetryPolicy
from ._weak import weak_callback
from ._wire import Frame, ProtoId

__all__ = ["Session"]

logger = logging.getLogger("aiomoomoo")

T = TypeVar("T")


class Session:
    """Owns the connection to one OpenD and every request's way through quota, retries and time.

    ``options`` are the client's checked options, read as they are; ``limiter`` grants each
    request its quota slot; ``rsa_key`` (a loaded key, or None) encrypts every connection;
    ``on_event`` gets OpenD's Notify pushes and may be replaced; ``describe`` names the owner in
    error messages.
    """

    def __init__(
        self,
        options: ClientOptions,
        *,
        limiter: Limiter,
        rsa_key: Any,
        on_event: Callable[[_messages.GatewayEvent], None] | None,
        describe: Callable[[], str],
    ) -> None:
        self.options = options
        self.address = f"{options.host}:{options.port}"
        self.limiter = limiter
        self._free = grants_at_once(limiter)  # no slot to wait for, so none to time
        first, largest = options.reconnect_delay
        self.policy = RetryPolicy(retries=options.retries, first=first, largest=largest)
        self._rsa_key = rsa_key
        self.on_event = on_event
        self._describe = describe
        self.connection: Connection | None = None
        self.connecting: asyncio.Task[Connection] | None = None
        self.closed = False
        self.reconnects = 0
        self._in_flight = 0  # requests on self.connection waiting for their reply
        self._changed: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: set[asyncio.Task[Any]] = set()
        self._recovering = False  # between a loss and the next proven connection: log once

    # -- connections ------------------------------------------------------------------------

    async def _open(self) -> Connection:
        encryption = ClientEncryption(self._rsa_key) if self._rsa_key is not None else None
        options = self.options
        return await open_connection(
            options.host,
            options.port,
            timeout=options.connect_timeout,
            client_id=options.client_id,
            keepalive_interval=options.keepalive_interval,
            max_body_size=options.max_body_size,
            encryption=encryption,
        )

    async def connect(self) -> None:
        """One connect attempt, unless a connection is ready; `ConnectError` if it fails."""
        self._check_open()
        if self.connection is not None and self.connection.is_ready:
            return
        if self.connecting is not None and not self.connecting.done():
            await self._wait_for_connection(self.connecting, Budget(None, 0.0))
            return
        self._adopt(await self._open())

    def _adopt(self, connection: Connection) -> Connection:
        if self.closed:
            # close() ran while the connection was being opened: it must not outlive the client.
            connection.close()
            raise self._closed_error()
        connection.on_push = weak_callback(self._on_push)
        connection.on_lost = weak_callback(self._on_lost)
        connection.on_passed = weak_callback(self._on_passed)
        if self.connection is not None:
            self.reconnects += 1
        self.connection = connection
        self._in_flight = 0
        self._notify()
        return connection

    async def _cycle(self) -> Connection:
        """Connect, pausing as the policy says, until a connection is up or the round is over."""
        policy = self.policy
        error: ConnectError | None = None
        while True:
            if policy.round_exhausted():
                policy.end_round()
                error = error or ConnectError(
                    f"OpenD at {self.address} kept dropping the connection before serving anything"
                )
                logger.warning("reconnecting to OpenD gave up for now: %s", error)
                raise error
            pause = policy.pause()
            if pause:
                logger.debug("waiting %.2f s before connecting to OpenD at %s", pause, self.address)
                await asyncio.sleep(pause)
            self._check_open()
            policy.attempting()
            try:
                connection = await self._open()
            except ConnectError as exc:
                policy.connect_failed()
                error = exc
                logger.debug("connect attempt failed: %s", exc)
                continue
            return self._adopt(connection)

    def _start_cycle(self) -> asyncio.Task[Connection]:
        if self.connecting is None or self.connecting.done():
            self.connecting = asyncio.get_running_loop().create_task(self._cycle())
            # Retrieved here too: a background reconnect may fail with no request waiting on it.
            self.connecting.add_done_callback(_retrieve)
        return self.connecting

    async def _wait_for_connection(self, task: asyncio.Task[Connection], budget: Budget) -> None:
        try:
            async with asyncio.timeout_at(budget.deadline):
                await asyncio.shield(task)
        except TimeoutError:
            raise RequestTimeoutError(
                f"no connection to OpenD at {self.address} within the request's {budget}"
            ) from None
        except ConnectError as exc:
            failure = ConnectError(str(exc))
            failure.__cause__ = exc.__cause__
            raise failure from exc.__cause__

    def _on_lost(self, connection: Connection, error: BaseException) -> None:
        if connection is not self.connection:
            return
        loop = asyncio.get_running_loop()
        proven = self.policy.is_proven(connection.replies, loop.time() - connection.opened_at)
        self.policy.lost(proven=proven, in_flight=connection.in_flight_at_loss)
        self._notify()
        if self.closed:
            return
        if proven or not self._recovering:
            logger.warning("%s; reconnecting", error)
            self._recovering = True
        else:
            logger.debug("%s; reconnecting", error)
        self._start_cycle()

    def _on_passed(self, connection: Connection) -> None:
        """OpenD answered two KeepAlives sent after a request it left unanswered, which so did
        not kill the connection: widen the window as a reply would, or others wait behind it."""
        if connection is self.connection:
            self.policy.replied()
            self._notify()

    def _on_push(self, frame: Frame) -> None:
        if frame.proto_id != ProtoId.NOTIFY or self.on_event is None:
            return
        try:
            event = _messages.parse_notify(frame.body)
        except ProtocolError as exc:
            logger.warning("ignoring an unreadable Notify push: %s", exc)
            return
        try:
            self.on_event(event)
        except Exception:
            # Raised into the connection's reader, it would break the connection.
            logger.exception("on_event callback failed for %r", event)

    def _notify(self) -> None:
        """Wake every request waiting for the connection or for room in its window."""
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def _ready(self, budget: Budget) -> Connection:
        """A ready connection with room for one more request, reserved for the caller."""
        loop = asyncio.get_running_loop()
        while True:
            self._check_open()
            connection = self.connection
            if connection is not None and connection.is_ready:
                if self._in_flight < self.policy.window:
                    self._in_flight += 1
                    return connection
                if self._changed is None:
                    self._changed = loop.create_future()
                try:
                    # Shielded: every waiter shares the future, and one waiter's timeout or
                    # cancellation must not cancel it under the others.
                    async with asyncio.timeout_at(budget.deadline):
                        await asyncio.shield(self._changed)
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"OpenD at {self.address} is recovering from a drop and had no room for "
                        f"the request within {budget}"
                    ) from None
                continue
            await self._wait_for_connection(self._start_cycle(), budget)

    def _finished(self, connection: Connection, *, replied: bool) -> None:
        if connection is not self.connection:
            return
        self._in_flight -= 1
        if replied:
            self.policy.replied()
            if self._recovering:
                self._recovering = False
                logger.info("connection to OpenD at %s is serving again", self.address)
        self._notify()

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        proto_id: int,
        body: bytes,
        decode: Callable[[bytes], T],
        timeout: float | None,
        *,
        charged: bool = True,
    ) -> T:
        """Send one read request and return its decoded, successful reply.

        Resent after drops it is not to blame for, and after up to ``retries`` it is; OpenD's
        rate-limit refusals are waited out for up to ``rate_limit_wait``. ``timeout`` bounds
        everything but the waits for the quota (the client's and OpenD's). ``charged=False``
        takes no slot of the limiter, which keeps the short-interest quota (a request of
        another kind, such as GetGlobalState, counts against a quota of its own at OpenD).
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        budget = Budget(timeout, loop.time())
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        limiter = self.limiter
        policy = self.policy
        charges = 0
        limited = 0.0
        backoff = 0.0
        try:
            while True:
                # One attempt: a quota slot, room on a ready connection, the reply; written out
                # here rather than in a helper coroutine, as every request passes this way.
                slot: QuotaSlot = NO_SLOT
                if charged and not self._free:
                    started = loop.time()
                    slot = await limiter.grant()
                    budget.extend(loop.time() - started)
                connection = self.connection
                if (
                    connection is not None
                    and connection.is_ready
                    and self._in_flight < policy.window
                    and not self.closed
                ):
                    self._in_flight += 1
                else:
                    try:
                        connection = await self._ready(budget)
                    except BaseException:
                        slot.give_back()
                        raise
                replied = False
                try:
                    reply = await connection.request(
                        proto_id, body, decode=decode, budget=budget, slot=slot
                    )
                    replied = True
                except NotSentError:
                    continue  # the connection was gone before the request left: free
                except (ConnectionLostError, ProtocolError) as exc:
                    if self.closed:
                        raise self._closed_error(waited=True) from None
                    charges += policy.blames(connection.in_flight_at_loss, connection.replies)
                    if not policy.may_resend(charges):
                        raise exc.with_traceback(None) from exc.__cause__
                    logger.info("proto %d resent after a drop (%d charged)", proto_id, charges)
                    continue
                finally:
                    self._finished(connection, replied=replied)
                try:
                    _messages.check_ret(reply, proto_id)
                except RateLimitError as error:
                    pause = self._on_rate_limited(error, limited, backoff)
                    backoff = pause * 2
                    await asyncio.sleep(pause)
                    budget.extend(pause)
                    limited += pause
                    continue
                return reply
        except asyncio.CancelledError:
            # close() cancelled it: a ClientClosedError, unless someone else cancelled it too.
            if task in self._closing and task.uncancel() == 0:
                raise self._closed_error(waited=True) from None
            raise
        finally:
            self._tasks.discard(task)
            self._closing.discard(task)

    def _on_rate_limited(self, error: RateLimitError, waited: float, backoff: float) -> float:
        """OpenD refused for its quota: the pause before trying again, or raise ``error``.

        The one place rate-limit refusals pass through: a budget OpenD states tighter than the
        client's limiter is adopted by it first.
        """
        adopt_server_budget(self.limiter, error.quota)
        wait = self.options.rate_limit_wait
        if waited >= wait:
            raise error
        pause = min(backoff or first_refusal_pause(self.limiter), wait - waited)
        logger.info("OpenD answered rate limit (%s); retrying in %.2f s", error.ret_msg, pause)
        return pause

    # -- closing ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise self._closed_error()

    def _closed_error(self, *, waited: bool = False) -> ClientClosedError:
        if waited:
            return ClientClosedError(f"{self._describe()} was closed while the request waited")
        return ClientClosedError(f"{self._describe()} is closed; create a new Client")

    async def close(self) -> None:
        """Fail every request at once (in flight, queued for quota, waiting for a connection)."""
        if self.closed:
            return
        self.abandon()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and task not in self._closing:
                self._closing.add(task)
                task.cancel()
        connecting = self.connecting
        if connecting is not None and not connecting.done():
            connecting.cancel()
            # gather, not a suppress(CancelledError): a cancellation of close() itself must
            # still reach its caller.
            await asyncio.gather(connecting, return_exceptions=True)

    def abandon(self) -> None:
        """Mark closed and close the socket, synchronously (the garbage collector's way)."""
        self.closed = True
        self._notify()
        if self.connection is not None:
            self.connection.close()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
