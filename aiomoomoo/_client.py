"""The public client: options checked once, then a session, a quota and the paging calls.

It never touches bytes or sockets: `aiomoomoo._session` owns the connection, reconnects and
retries, `aiomoomoo._messages` builds and reads the messages, `aiomoomoo._paging` walks pages
and `aiomoomoo._many` runs many walks at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import Self

import pandas as pd

from . import _messages
from ._connection import Connection, ConnectionInfo
from ._crypto import load_rsa_private_key
from ._many import Progress, SymbolResult, fetch_many, iter_many
from ._messages import GatewayEvent, GlobalState
from ._options import (
    CLIENT_TIMEOUT,
    ClientOptions,
    OptionView,
    _ClientTimeout,
    check_next_key,
    check_num,
    check_since,
    check_timeout,
)
from ._paging import ShortInterestPage, collect, walk
from ._quota import SlidingWindowLimiter
from ._rate_limit import Limiter, RateLimit, RequestLimiter, adapt_rate_limit, unwrap_rate_limit
from ._security import Security, parse_code
from ._session import Session
from ._weak import weak_describer
from ._wire import DEFAULT_MAX_BODY_SIZE, ProtoId

__all__ = ["Client", "GatewayEvent", "GlobalState", "ShortInterestPage"]


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
    - ``timeout``: seconds each request may take (default 12, as the official SDK), None for
      ever: one deadline for the write, any reconnect and the reply; only the waits for the
      quota (this client's and OpenD's rate-limit refusals) do not count.
    - ``connect_timeout``: seconds for TCP connect plus InitConnect.
    - ``retries``: how many dropped connections one read may be blamed for before it fails
      (default 3); drops it was not alone in flight for are resent free; 0 never resends.
    - ``reconnect_delay``: first and largest pause between reconnect attempts; the pause doubles,
      with jitter, from the first to the largest, and resets only once a connection served a
      reply or lived 10 s.
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
        options = ClientOptions.parse(
            host,
            port,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            reconnect_delay=reconnect_delay,
            rate_limit_wait=rate_limit_wait,
            keepalive_interval=keepalive_interval,
            client_id=client_id,
            on_event=on_event,
            max_body_size=max_body_size,
        )
        self._options = options
        self._limiter: Limiter = adapt_rate_limit(rate_limit)
        # Loaded now, so a wrong or unreadable key fails here rather than on the wire.
        self._rsa_key = (
            load_rsa_private_key(rsa_private_key) if rsa_private_key is not None else None
        )
        self._session = Session(
            options,
            limiter=self._limiter,
            rsa_key=self._rsa_key,
            on_event=on_event,
            describe=weak_describer(self, lambda client: client._name, "a collected Client"),
        )

    def __repr__(self) -> str:
        if self._session.closed:
            state = "closed"
        elif self._connection is not None and self._connection.is_ready:
            state = "connected"
        else:
            state = "disconnected"
        encrypted = " encrypted" if self._rsa_key is not None else ""
        return f"<Client {self.host}:{self.port} {state}{encrypted} quota={self._limiter!r}>"

    # The options, readable as before and now read-only: the session was built from them.
    host: OptionView[str] = OptionView()
    port: OptionView[int] = OptionView()
    timeout: OptionView[float | None] = OptionView()
    connect_timeout: OptionView[float] = OptionView()
    retries: OptionView[int] = OptionView()
    reconnect_delay: OptionView[tuple[float, float]] = OptionView()
    rate_limit_wait: OptionView[float] = OptionView()
    keepalive_interval: OptionView[float | None] = OptionView()
    client_id: OptionView[str] = OptionView()
    max_body_size: OptionView[int] = OptionView()

    @property
    def _name(self) -> str:
        """How errors name the client: short, unlike its repr with the quota's state."""
        return f"the Client for {self.host}:{self.port}"

    @property
    def rate_limiter(self) -> SlidingWindowLimiter | RequestLimiter | None:
        """The limiter this client's requests go through: the one passed in, or the one built
        from a ``(max_requests, period)`` tuple; None without a client-side limit."""
        return unwrap_rate_limit(self._limiter)

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """OpenD's InitConnect answer for the current connection, None while disconnected."""
        connection = self._connection
        return connection.info if connection is not None and connection.is_ready else None

    @property
    def on_event(self) -> Callable[[GatewayEvent], None] | None:
        """Called with a `GatewayEvent` for every Notify push (None: pushes are ignored)."""
        return self._session.on_event

    @on_event.setter
    def on_event(self, on_event: Callable[[GatewayEvent], None] | None) -> None:
        self._session.on_event = on_event

    @property
    def reconnects(self) -> int:
        """How many times the client has reconnected after losing its connection."""
        return self._session.reconnects

    @property
    def _connection(self) -> Connection | None:
        """The session's current connection (tests and the repr look at it)."""
        return self._session.connection

    @property
    def _reconnector(self) -> object:
        """The session's reconnect task, if one runs (tests look at it)."""
        return self._session.connecting

    # -- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect now (``async with`` does this); `ConnectError` if OpenD is not there."""
        await self._session.connect()

    async def close(self) -> None:
        """Close the client: every request of it fails at once with `ClientClosedError`, wherever
        it waits (for its reply, for a quota slot or for a reconnect), and new ones are refused."""
        await self._session.close()

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
        session = getattr(self, "_session", None)
        if session is None or session.closed:
            return
        connection = session.connection
        if connection is not None and connection.is_ready:
            message = f"unclosed {self!r}; use 'async with' or await close()"
            # Closed first, so the socket goes even when the warning is turned into an error,
            # and marked closed first, so losing the connection starts no reconnect.
            with contextlib.suppress(RuntimeError):  # the event loop is already closed
                session.abandon()
            _warn(message, ResourceWarning, source=self)

    # -- requests ---------------------------------------------------------------------------

    async def get_global_state(
        self, *, timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT
    ) -> GlobalState:
        """Ask OpenD for its `GlobalState` (GetGlobalState, 1002): logins and market states.

        It takes no slot of the short-interest quota. ``timeout`` as in `get_short_interest`.
        """
        reply = await self._session.request(
            ProtoId.GET_GLOBAL_STATE,
            _messages.global_state_request(),
            _messages.decode_global_state,
            self._timeout_of(timeout),
            charged=False,
        )
        return _messages.global_state(reply)

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
        default 10 when None). ``timeout`` overrides the client's timeout for this call.
        Bad arguments raise ``TypeError``/``ValueError`` before anything is sent. The request is
        resent if the connection drops (it is a read); see ``retries`` for when it gives up. A
        page holding a row whose date cannot be right raises `ProtocolError` naming the row.
        """
        security = parse_code(code)
        key = check_next_key(next_key)
        size = check_num(num)
        body = _messages.short_interest_request(security, key, size)
        reply = await self._session.request(
            ProtoId.GET_SHORT_INTEREST,
            body,
            _messages.decode_short_interest,
            self._timeout_of(timeout),
        )
        return ShortInterestPage.from_reply(security, reply, asked=key)

    async def _page(
        self, security: Security, next_key: str | None, num: int | None, timeout: float | None
    ) -> ShortInterestPage:
        """One page for a walk, its arguments already checked and ``timeout`` resolved."""
        body = _messages.short_interest_request(security, next_key, num)
        reply = await self._session.request(
            ProtoId.GET_SHORT_INTEREST, body, _messages.decode_short_interest, timeout
        )
        return ShortInterestPage.from_reply(security, reply, asked=next_key)

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
        wait = self._timeout_of(timeout)

        async def fetch(security: Security, key: str | None, num: int | None) -> ShortInterestPage:
            return await self._page(security, key, num, wait)

        async with contextlib.aclosing(
            walk(fetch, security, num=size, next_key=key, since=cutoff)
        ) as pages:
            async for page in pages:
                yield page

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

    def _timeout_of(self, timeout: float | _ClientTimeout | None) -> float | None:
        """A call's ``timeout=``: the client's own for `CLIENT_TIMEOUT`, else checked."""
        return self._options.timeout if timeout is CLIENT_TIMEOUT else check_timeout(timeout)

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
        pages = self.iter_short_interest(security.code, num=num, since=since, timeout=timeout)
        return await collect(pages, security, since=since, on_page=on_page)

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
            self._history,
            codes,
            since=since,
            num=num,
            concurrency=concurrency,
            on_progress=on_progress,
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
            self._history,
            codes,
            since=since,
            num=num,
            concurrency=concurrency,
            on_progress=on_progress,
        )
