"""The public client: validation, quota, paging, retries and reconnects, DataFrames.

It never touches bytes: `aiomoomoo._connection` moves frames, `aiomoomoo._frames`
builds tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import os
import random
import warnings
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, ParamSpec, Self

import pandas as pd
from google.protobuf.message import DecodeError

from ._arguments import (
    END_OF_DATA,
    check_int,
    check_next_key,
    check_num,
    check_seconds,
    check_since,
    check_timeout,
)
from ._connection import Connection, ConnectionInfo
from ._crypto import ClientEncryption, load_rsa_private_key
from ._errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    ProtocolError,
    RateLimitError,
    server_error,
)
from ._frames import history_frame, rows_to_frame
from ._many import Progress, SymbolResult, fetch_many, iter_many
from ._proto import Notify_pb2, Qot_GetShortInterest_pb2
from ._quota import (
    Quota,
    RateLimit,
    RequestLimiter,
    SlidingWindowLimiter,
    adapt_rate_limit,
    unwrap_rate_limit,
)
from ._security import Market, Security, parse_code
from ._wire import DEFAULT_MAX_BODY_SIZE, Frame, ProtoId

__all__ = ["Client", "GatewayEvent", "ShortInterestPage"]

logger = logging.getLogger("aiomoomoo")


class _ClientTimeout(enum.Enum):
    """The type of `CLIENT_TIMEOUT`."""

    CLIENT_TIMEOUT = "the client's timeout"


CLIENT_TIMEOUT: Final = _ClientTimeout.CLIENT_TIMEOUT
"""The default of the calls' ``timeout=``: use the `Client`'s own ``timeout``."""

_P = ParamSpec("_P")


def _weak_callback(method: Callable[_P, None]) -> Callable[_P, None]:
    """``method`` (a bound method) as a callback that does not keep its object alive.

    The connection lives as long as its socket, held by the event loop; if its callbacks held
    the client, a client its owner forgot to close would never be collected, never warn and
    keep the socket open for ever.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: _P.args, **kwargs: _P.kwargs) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, **kwargs)

    return call


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A Notify (1003) push from OpenD: ``type`` is OpenD's NotifyType number.

    ``description`` carries the event text of gateway events (``type == 1``) and is empty for
    the others.
    """

    type: int
    type_name: str
    description: str


class ShortInterestPage:
    """One page of short-interest history, newest row first.

    ``us`` and ``hk`` are the official SDK's two DataFrames (the one for the other market is
    empty); ``frame`` is the one for the code's market. ``next_key`` is the key of the next page,
    ``"-1"`` when this is the last. Frames are built when first read, so a page you only page
    through costs no DataFrame.
    """

    __slots__ = ("_frames", "_rows", "next_key", "security")

    def __init__(
        self,
        security: Security,
        s2c: Qot_GetShortInterest_pb2.S2C,
        next_key: str,
    ) -> None:
        self.security = security
        """The parsed code: its `Market` and symbol."""
        self.next_key = next_key
        """The key of the next page, for `get_short_interest`; ``"-1"`` on the last page."""
        self._rows: dict[Market, Sequence[Any]] = {
            Market.US: s2c.usItemList,
            Market.HK: s2c.hkItemList,
        }
        self._frames: dict[Market, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"<ShortInterestPage {self.code} rows={len(self)} next_key={self.next_key!r}>"

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    @property
    def code(self) -> str:
        """The security code the page belongs to, ``"US.AAPL"``."""
        return self.security.code

    @property
    def market(self) -> Market:
        """The code's market."""
        return self.security.market

    @property
    def has_more(self) -> bool:
        """Whether another page follows this one."""
        return self.next_key != END_OF_DATA

    @property
    def us(self) -> pd.DataFrame:
        """US rows, in the official column order (empty for an HK code)."""
        return self._frame_of(Market.US)

    @property
    def hk(self) -> pd.DataFrame:
        """HK rows, in the official column order (empty for a US code)."""
        return self._frame_of(Market.HK)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows of the code's own market: ``us`` for a US code, ``hk`` for an HK one."""
        return self._frame_of(self.security.market)

    def _frame_of(self, market: Market) -> pd.DataFrame:
        frame = self._frames.get(market)
        if frame is None:
            frame = self._frames[market] = rows_to_frame(market, self._rows[market])
            frame.attrs["next_key"] = self.next_key
        return frame

    def _items(self) -> Sequence[Any]:
        """The protobuf rows of the code's own market."""
        return self._rows[self.security.market]


class Client:
    """An asyncio client for one OpenD gateway, over one multiplexed connection.

    Use it as an async context manager: ``async with aiomoomoo.Client("127.0.0.1", 11111) as
    client:`` connects (and fails fast with `ConnectError` if OpenD is not there), and
    leaving the block closes it. Any number of tasks may call it at once; their requests share the
    socket and the quota.

    Options (keyword-only):

    - ``rate_limit``: ``(max_requests, period_seconds)``, default OpenD's ``(30, 30.0)``;
      ``None`` for no client-side limit; or a limiter to share between clients (a
      `SlidingWindowLimiter`, or any object with an async ``acquire()`` such as
      ``aiolimiter.AsyncLimiter``).
    - ``timeout``: seconds to wait for each reply (default 12, as the official SDK), None for ever.
    - ``connect_timeout``: seconds for TCP connect plus InitConnect.
    - ``retries``: how many times a read is resent after the connection drops (default 3).
    - ``reconnect_delay``: first and largest pause between reconnect attempts; the pause doubles,
      with jitter, from the first to the largest.
    - ``rate_limit_wait``: the longest a request keeps retrying when OpenD itself answers "rate
      limit" (another process shares the account); then `RateLimitError` is raised.
    - ``keepalive_interval``: override OpenD's advertised keep-alive interval (seconds).
    - ``client_id``: the clientID sent in InitConnect.
    - ``on_event``: called with a `GatewayEvent` for every Notify push.
    - ``max_body_size``: the largest reply body accepted, in bytes; a larger announced size is a
      protocol error (it protects against a corrupt or hostile header).
    - ``rsa_private_key``: encrypt the connection, as OpenD does when it is configured with an
      RSA key: the same 1024-bit private key as a PEM file path or PEM bytes. InitConnect then
      travels under RSA and everything after under AES. Needs ``pip install aiomoomoo[crypto]``.
      A key that cannot be read raises ``ValueError`` here; a key OpenD does not share fails the
      connect with `ConnectError`. The key never appears in logs or reprs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11111,
        *,
        rate_limit: RateLimit = (30, 30.0),
        timeout: float | None = 12.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        rate_limit_wait: float = 60.0,
        keepalive_interval: float | None = None,
        client_id: str = "aiomoomoo",
        on_event: Callable[[GatewayEvent], None] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        rsa_private_key: str | os.PathLike[str] | bytes | None = None,
    ) -> None:
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, got {host!r}")
        if not host:
            raise ValueError("host must not be empty")
        self.host = host
        self.port = check_int(port, "port", low=1, high=65535)
        self.timeout = check_timeout(timeout)
        connect_within = check_timeout(connect_timeout, "connect_timeout")
        if connect_within is None:
            raise ValueError("connect_timeout must be a positive number of seconds, not None")
        self.connect_timeout = connect_within
        self.retries = check_int(retries, "retries", low=0)
        if not isinstance(reconnect_delay, tuple) or len(reconnect_delay) != 2:
            raise TypeError(
                f"reconnect_delay must be a (first, largest) tuple, got {reconnect_delay!r}"
            )
        first, largest = (check_seconds(v, "reconnect_delay") for v in reconnect_delay)
        if first > largest:
            raise ValueError(f"reconnect_delay must have first <= largest, got {reconnect_delay!r}")
        self.reconnect_delay = (first, largest)
        self.rate_limit_wait = check_seconds(rate_limit_wait, "rate_limit_wait")
        self.keepalive_interval = check_timeout(keepalive_interval, "keepalive_interval")
        if not isinstance(client_id, str) or not client_id:
            raise TypeError(f"client_id must be a non-empty str, got {client_id!r}")
        self.client_id = client_id
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be callable or None, got {on_event!r}")
        self.on_event = on_event
        self.max_body_size = check_int(max_body_size, "max_body_size", low=1)
        self._quota: Quota = adapt_rate_limit(rate_limit)
        # Loaded now, so a wrong or unreadable key fails here rather than on the wire.
        self._rsa_key = (
            load_rsa_private_key(rsa_private_key) if rsa_private_key is not None else None
        )
        self._connection: Connection | None = None
        self._connect_lock = asyncio.Lock()
        self._reconnector: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0
        """How many times the client has reconnected after losing its connection."""

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._connection is not None and self._connection.is_ready:
            state = "connected"
        else:
            state = "disconnected"
        encrypted = " encrypted" if self._rsa_key is not None else ""
        return f"<Client {self.host}:{self.port} {state}{encrypted} quota={self._quota!r}>"

    @property
    def _name(self) -> str:
        """How errors name the client: short, unlike its repr with the quota's state."""
        return f"the Client for {self.host}:{self.port}"

    @property
    def rate_limiter(self) -> SlidingWindowLimiter | RequestLimiter | None:
        """The limiter this client's requests go through: the one passed in, or the one built
        from a ``(max_requests, period)`` tuple; None without a client-side limit."""
        return unwrap_rate_limit(self._quota)

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """OpenD's InitConnect answer for the current connection, None while disconnected."""
        connection = self._connection
        return connection.info if connection is not None and connection.is_ready else None

    # -- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect now (``async with`` does this); `ConnectError` if OpenD is not there."""
        await self._ready_connection(attempts=1)

    async def close(self) -> None:
        """Close the connection; requests still waiting fail and new ones are refused."""
        if self._closed:
            return
        self._closed = True
        if self._reconnector is not None:
            self._reconnector.cancel()
            # gather, not a suppress(CancelledError): a cancellation of close() itself must
            # still reach its caller.
            await asyncio.gather(self._reconnector, return_exceptions=True)
        if self._connection is not None:
            self._connection.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None and not getattr(self, "_closed", True) and connection.is_ready:
            message = f"unclosed {self!r}; use 'async with' or await close()"
            # Closed first, so the socket goes even when the warning is turned into an error,
            # and marked closed first, so losing the connection starts no reconnect.
            self._closed = True
            with contextlib.suppress(RuntimeError):  # the event loop is already closed
                connection.close()
            _warn(message, ResourceWarning, source=self)

    # -- connections ------------------------------------------------------------------------

    def _on_connection_lost(self, connection: Connection, error: BaseException) -> None:
        if self._closed or connection is not self._connection:
            return
        logger.warning("%s; reconnecting", error)
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self._ready_connection(attempts=None)
        except ConnectError as exc:
            # Requests that arrive later start a fresh round of attempts; nothing waits on this.
            logger.warning("reconnect to OpenD gave up for now: %s", exc)

    async def _ready_connection(self, *, attempts: int | None = None) -> Connection:
        """The live connection, connecting first if needed; ``attempts`` None means the default."""
        if self._closed:
            raise ClientClosedError(f"{self._name} is closed; create a new Client")
        connection = self._connection
        if connection is not None and connection.is_ready:
            return connection
        async with self._connect_lock:
            connection = self._connection
            if connection is not None and connection.is_ready:
                return connection
            total = attempts if attempts is not None else self.retries + 1
            delay, largest = self.reconnect_delay
            for attempt in range(1, total + 1):
                if self._closed:
                    raise ClientClosedError(f"{self._name} is closed; create a new Client")
                try:
                    connection = await Connection.open(
                        self.host,
                        self.port,
                        timeout=self.connect_timeout,
                        client_id=self.client_id,
                        keepalive_interval=self.keepalive_interval,
                        max_body_size=self.max_body_size,
                        on_push=_weak_callback(self._on_push),
                        on_lost=_weak_callback(self._on_connection_lost),
                        encryption=(
                            ClientEncryption(self._rsa_key) if self._rsa_key is not None else None
                        ),
                    )
                except ConnectError as exc:
                    if attempt == total:
                        raise
                    logger.info("connect attempt %d failed: %s", attempt, exc)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(max(delay * 2, 0.01), largest)
                    continue
                return self._adopt(connection)
            raise AssertionError("unreachable")  # pragma: no cover

    def _adopt(self, connection: Connection) -> Connection:
        """Make a freshly opened ``connection`` the client's one."""
        if self._closed:
            # close() ran while the connection was being opened: it must not outlive the client.
            connection.close()
            raise ClientClosedError(f"{self._name} is closed; create a new Client")
        if self._connection is not None:
            self.reconnects += 1
        self._connection = connection
        return connection

    def _on_push(self, frame: Frame) -> None:
        if frame.proto_id != ProtoId.NOTIFY or self.on_event is None:
            return
        try:
            push = Notify_pb2.Response.FromString(frame.body)
        except DecodeError:
            logger.warning("ignoring an undecodable Notify push")
            return
        s2c = push.s2c
        try:
            name = Notify_pb2.NotifyType.Name(s2c.type).removeprefix("NotifyType_")  # type: ignore[arg-type]
        except ValueError:
            name = str(s2c.type)
        event = GatewayEvent(s2c.type, name, s2c.event.desc if s2c.HasField("event") else "")
        try:
            self.on_event(event)
        except Exception:
            # Raised into the event loop's data_received, it would close the connection and
            # fail every request in flight on it.
            logger.exception("on_event callback failed for %r", event)

    # -- requests ---------------------------------------------------------------------------

    async def _request_short_interest(
        self, body: bytes, *, timeout: float | None
    ) -> Qot_GetShortInterest_pb2.Response:
        """Send a 3249 request with the quota, retrying across reconnects and server rate limits."""
        proto_id = ProtoId.GET_SHORT_INTEREST
        lost = 0
        waited = 0.0
        backoff = 0.0
        while True:
            connection = self._connection
            if connection is None or not connection.is_ready or self._closed:
                connection = await self._ready_connection()
            try:
                async with self._quota.slot():
                    if not connection.is_ready:
                        # It dropped while this request queued for the quota: the request never
                        # left, so it neither fails nor spends a retry for that.
                        connection = await self._ready_connection()
                    frame = await connection.request(proto_id, body, timeout=timeout)
            except ConnectionLostError:
                if self._closed:
                    raise ClientClosedError(
                        f"{self._name} was closed while the request waited"
                    ) from None
                lost += 1
                if lost > self.retries:
                    raise
                logger.info("connection lost with proto %d in flight; retry %d", proto_id, lost)
                continue
            try:
                reply = Qot_GetShortInterest_pb2.Response.FromString(frame.body)
            except DecodeError as exc:
                raise ProtocolError(f"unreadable reply to proto {proto_id}: {exc}") from exc
            if reply.retType == 0:
                return reply
            error = server_error(
                reply.retMsg,
                ret_type=reply.retType,
                err_code=reply.errCode if reply.HasField("errCode") else None,
                proto_id=proto_id,
            )
            if isinstance(error, RateLimitError) and waited < self.rate_limit_wait:
                backoff = backoff or self._rate_limit_backoff()
                pause = min(backoff, self.rate_limit_wait - waited)
                logger.info(
                    "OpenD answered rate limit (%s); retrying in %.2f s", error.ret_msg, pause
                )
                await asyncio.sleep(pause)
                waited += pause
                backoff *= 2
                continue
            raise error

    def _rate_limit_backoff(self) -> float:
        """The first pause after OpenD answers "rate limit": one slot's share of the period."""
        # A wrapped limiter is looked into: aiolimiter names its budget max_rate/time_period.
        limiter = getattr(self._quota, "limiter", self._quota)
        period = getattr(limiter, "period", None) or getattr(limiter, "time_period", None)
        count = getattr(limiter, "max_requests", None) or getattr(limiter, "max_rate", None)
        try:
            return max(float(period or 30.0) / float(count or 30), 0.01)
        except (TypeError, ValueError, ZeroDivisionError):
            return 1.0

    async def get_short_interest(
        self,
        code: str,
        next_key: str | None = None,
        num: int | None = None,
        *,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> ShortInterestPage:
        """Fetch one page of ``code``'s short-interest history, newest rows first.

        ``code`` is ``"US.<symbol>"`` or ``"HK.<symbol>"``; ``next_key`` is None for the first page
        and the previous page's ``next_key`` after that; ``num`` is the page size, 1 to 50 (OpenD's
        default 10 when None). ``timeout`` overrides the client's reply timeout for this call.
        Bad arguments raise ``TypeError``/``ValueError`` before anything is sent. The request is
        resent if the connection drops (it is a read), up to ``retries`` times.
        """
        security = parse_code(code)
        key = check_next_key(next_key)
        size = check_num(num)
        wait = self.timeout if timeout is CLIENT_TIMEOUT else check_timeout(timeout)
        return await self._page(security, key, size, wait)

    async def _page(
        self, security: Security, next_key: str | None, num: int | None, timeout: float | None
    ) -> ShortInterestPage:
        c2s = Qot_GetShortInterest_pb2.C2S()
        c2s.security.market = int(security.market)
        c2s.security.code = security.symbol
        if next_key is not None:
            c2s.nextKey = next_key
        if num is not None:
            c2s.num = num
        body = Qot_GetShortInterest_pb2.Request(c2s=c2s).SerializeToString()
        reply = await self._request_short_interest(body, timeout=timeout)
        s2c = reply.s2c
        # As the official SDK: a reply without nextKey is the last page.
        key = s2c.nextKey if s2c.HasField("nextKey") else END_OF_DATA
        return ShortInterestPage(security, s2c, key)

    async def iter_short_interest(
        self,
        code: str,
        *,
        num: int | None = None,
        next_key: str | None = None,
        since: dt.date | str | None = None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> AsyncGenerator[ShortInterestPage, None]:
        """Yield ``code``'s history page by page, newest first, until OpenD says ``"-1"``.

        Each page is fetched when the previous one has been consumed. A connection drop mid-walk
        resends the same ``next_key``, so no page is lost or repeated. Leaving the loop early
        (``break``) is safe; wrap it in ``contextlib.aclosing`` to release it at once in other
        cases. ``next_key`` resumes an earlier walk; ``since`` (a date) stops the walk at the
        first page that reaches rows older than it (that page is yielded whole).
        """
        security = parse_code(code)
        key = check_next_key(next_key)
        size = check_num(num)
        cutoff = check_since(since)
        wait = self.timeout if timeout is CLIENT_TIMEOUT else check_timeout(timeout)
        seen: set[str] = set()
        while True:
            page = await self._page(security, key, size, wait)
            yield page
            if not page.has_more or (cutoff is not None and _reaches(page, cutoff)):
                return
            if not page.next_key or page.next_key in seen:
                raise ProtocolError(
                    f"OpenD returned next_key {page.next_key!r} for {security.code} again; "
                    "stopping instead of looping for ever"
                )
            seen.add(page.next_key)
            key = page.next_key

    async def fetch_short_interest(
        self,
        code: str,
        *,
        num: int = 50,
        since: dt.date | str | None = None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> pd.DataFrame:
        """Fetch ``code``'s whole history (or back to ``since``) as one DataFrame, newest first.

        Pages of ``num`` rows (default 50, the fewest requests) are walked as in
        `iter_short_interest`; the frame has the code's market columns and dtypes, even when
        empty, and ``attrs["next_key"] == "-1"``.
        """
        return await self._history(
            parse_code(code), num=check_num(num), since=check_since(since), timeout=timeout
        )

    async def _history(
        self,
        security: Security,
        *,
        num: int | None,
        since: dt.date | None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
        on_page: Callable[[ShortInterestPage], None] | None = None,
    ) -> pd.DataFrame:
        """Walk ``security``'s pages into one frame (arguments already checked)."""
        items: list[Any] = []
        async for page in self.iter_short_interest(
            security.code, num=num, since=since, timeout=timeout
        ):
            items.extend(page._items())
            if on_page is not None:
                on_page(page)
        frame = history_frame(security.market, items, since)
        frame.attrs["next_key"] = END_OF_DATA
        return frame

    def iter_short_interest_many(
        self,
        codes: Iterable[str],
        *,
        since: dt.date | str | None = None,
        num: int = 50,
        concurrency: int = 4,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> AsyncGenerator[SymbolResult, None]:
        """Fetch many codes' histories concurrently; yield each `SymbolResult` as it completes.

        At most ``concurrency`` walks run at once, all over this client's connection and quota.
        A symbol that fails (unknown code, server error, lost connection after the retries)
        yields a result with its ``error`` and does not stop the others. ``since`` stops each walk
        at that date; ``on_progress`` is called with a `Progress` after every page and at the end
        of every symbol. Codes are validated, and duplicates refused, before anything is sent.
        """
        return iter_many(
            self, codes, since=since, num=num, concurrency=concurrency, on_progress=on_progress
        )

    async def fetch_short_interest_many(
        self,
        codes: Iterable[str],
        *,
        since: dt.date | str | None = None,
        num: int = 50,
        concurrency: int = 4,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> pd.DataFrame:
        """Fetch many codes' histories into one DataFrame with a leading ``code`` column.

        Arguments as in `iter_short_interest_many`. Rows are grouped by code in the order given,
        newest first within each; columns are the union of the markets' columns. If any symbol
        fails, `FetchManyError` is raised carrying ``failures`` and the ``frame`` of every symbol
        that did arrive, so no fetched data is lost.
        """
        return await fetch_many(
            self, codes, since=since, num=num, concurrency=concurrency, on_progress=on_progress
        )


def _reaches(page: ShortInterestPage, cutoff: dt.date) -> bool:
    """Whether the page holds a row dated before ``cutoff`` (rows run newest first)."""
    items = page._items()
    if not items:
        return False
    last = items[-1].timestampStr
    return bool(last) and str(last) < cutoff.isoformat()
