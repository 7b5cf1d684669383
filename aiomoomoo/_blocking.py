"""`BlockingClient`: the asyncio client for scripts, notebooks and threads.

It owns one `Client` and runs it on an event loop of its own, in a thread started through anyio's
blocking portal; every method hands its call to that loop and waits for the answer. So it works
where an event loop already runs in the calling thread (a Jupyter cell) as well as in a plain
script, and any number of threads share its one connection and quota.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import pandas as pd

from ._client import Client, GlobalState, ShortInterestPage
from ._connection import ConnectionInfo
from ._errors import ClientClosedError
from ._many import Progress, SymbolResult
from ._options import CLIENT_TIMEOUT, _ClientTimeout
from ._quota import SlidingWindowLimiter
from ._rate_limit import RequestLimiter

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["BlockingClient"]

_T = TypeVar("_T")

#: The longest a garbage-collected client waits for its loop to wind down.
_COLLECT_WAIT: Final = 5.0


class _End:
    """Marks the end of an async iterator handed across the portal (StopAsyncIteration is not
    a value a future should carry)."""


_END: Final = _End()


async def _next(iterator: AsyncIterator[_T]) -> _T | _End:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


class BlockingClient:
    """A blocking twin of `Client`: same options, same methods, no ``await``.

    ``with aiomoomoo.BlockingClient("127.0.0.1", 11111) as client:`` connects and
    ``client.fetch_short_interest("US.AAPL")`` returns the DataFrame. The async client runs on an
    event loop in a thread of its own (started on first use), so it works in a plain script, from
    any number of threads at once (they share one connection and one quota) and inside a running
    event loop's thread such as a Jupyter cell. Errors are the async client's, unchanged.

    ``host``, ``port`` and every keyword option are `Client`'s, checked here. Callbacks
    (``on_event``, ``on_progress``) run in the client's loop thread and must not call the client.
    Leaving the ``with`` block, or `close`, ends every call in progress with `ClientClosedError`
    and stops the thread; a client left open warns with ``ResourceWarning`` when collected.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 11111, **options: Any) -> None:
        # Built here, so a bad option raises in the caller's thread before any thread starts.
        self._client = Client(host, port, **options)
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._portal_exit: contextlib.ExitStack | None = None
        self._loop_thread_id: int | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<BlockingClient of {self._client!r}>"

    @property
    def _name(self) -> str:
        """How errors name the client: short, unlike its repr."""
        return f"the BlockingClient for {self.host}:{self.port}"

    # -- what the async client knows ---------------------------------------------------------

    @property
    def host(self) -> str:
        """OpenD's address."""
        return self._client.host

    @property
    def port(self) -> int:
        """OpenD's port."""
        return self._client.port

    @property
    def timeout(self) -> float | None:
        """Seconds each reply may take (None: no limit)."""
        return self._client.timeout

    @property
    def retries(self) -> int:
        """How many times a read is resent after the connection drops."""
        return self._client.retries

    @property
    def reconnects(self) -> int:
        """How many times the client has reconnected after losing its connection."""
        return self._client.reconnects

    @property
    def rate_limiter(self) -> SlidingWindowLimiter | RequestLimiter | None:
        """The limiter the requests go through, as `Client.rate_limiter`."""
        return self._client.rate_limiter

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """OpenD's InitConnect answer for the current connection, None while disconnected."""
        return self._client.connection_info

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    # -- lifecycle ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect now (``with`` does this); `ConnectError` if OpenD is not there."""
        self._call(self._client.connect)

    def close(self) -> None:
        """Close the connection and stop the loop thread; calls still waiting fail at once.

        Calls in progress in other threads raise `ClientClosedError`; closing twice is fine.
        """
        self._shutdown(wait=None)

    def __enter__(self) -> Self:
        try:
            self.connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_portal", None) is None or getattr(self, "_closed", True):
            return
        # As Client: only a client left connected is worth a warning; the loop thread of one
        # that never connected is stopped quietly.
        connected = self._client.connection_info is not None
        message = f"unclosed {self!r}; use 'with' or close()"
        # At interpreter exit the loop thread is already gone: waiting for it would hang.
        if not sys.is_finalizing():
            self._shutdown(wait=_COLLECT_WAIT)
        if connected:
            _warn(message, ResourceWarning, source=self)

    def _shutdown(self, *, wait: float | None) -> None:
        if threading.get_ident() == self._loop_thread_id:
            raise RuntimeError("a BlockingClient cannot be closed from its own callbacks")
        with self._lock:
            self._closed = True
            portal, self._portal = self._portal, None
            portal_exit, self._portal_exit = self._portal_exit, None
        if portal is None or portal_exit is None:
            return
        try:
            # RuntimeError: the loop has already stopped; TimeoutError: only when collected.
            with contextlib.suppress(RuntimeError, TimeoutError):
                portal.start_task_soon(self._client.close).result(wait)
            # What close() did not end (a call queued for a quota slot) is cancelled; its
            # caller then sees ClientClosedError.
            with contextlib.suppress(RuntimeError, TimeoutError):
                portal.start_task_soon(portal.stop, True).result(wait)
        finally:
            portal_exit.close()

    # -- calls into the loop -----------------------------------------------------------------

    def _running_portal(self) -> BlockingPortal:
        with self._lock:
            if self._closed:
                raise ClientClosedError(f"{self._name} is closed; create a new client")
            if self._portal is None:
                # Imported on first use: `import aiomoomoo` should not pay for it.
                from anyio.from_thread import start_blocking_portal

                stack = contextlib.ExitStack()
                self._portal = stack.enter_context(start_blocking_portal("asyncio"))
                self._portal_exit = stack
                self._loop_thread_id = self._portal.call(threading.get_ident)
            return self._portal

    def _call(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``function(*args)`` on the loop and wait for it; an interrupted wait cancels it."""
        portal = self._running_portal()
        try:
            future = portal.start_task_soon(function, *args)
        except RuntimeError:
            if self._closed:  # close() won the race for the portal
                raise ClientClosedError(f"{self._name} was closed") from None
            raise
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._closed:
                raise ClientClosedError(
                    f"{self._name} was closed while the request waited"
                ) from None
            raise
        except BaseException:
            # KeyboardInterrupt in a script or notebook: stop the request rather than leave it
            # running in the loop thread (a no-op if it already ended with this very error).
            future.cancel()
            raise

    def _iterate(self, make: Callable[[], AsyncIterator[_T]]) -> Generator[_T, None, None]:
        """A plain iterator over the async one ``make()`` returns on the loop.

        Leaving it early (``break``, an exception, garbage collection) closes the async one, so
        its requests and tasks end too.
        """
        iterator = make()
        try:
            while not isinstance(item := self._call(_next, iterator), _End):
                yield item
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None and not self._closed:
                with contextlib.suppress(ClientClosedError, RuntimeError):
                    self._call(aclose)

    # -- the API, as Client's ----------------------------------------------------------------

    def get_global_state(
        self, *, timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT
    ) -> GlobalState:
        """OpenD's logins and market states, as `Client.get_global_state`."""

        async def get() -> GlobalState:
            return await self._client.get_global_state(timeout=timeout)

        return self._call(get)

    def get_short_interest(
        self,
        code: str,
        next_key: str | None = None,
        num: int | None = None,
        *,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> ShortInterestPage:
        """One page of ``code``'s history, newest rows first, as `Client.get_short_interest`."""

        async def get() -> ShortInterestPage:
            return await self._client.get_short_interest(code, next_key, num, timeout=timeout)

        return self._call(get)

    def iter_short_interest(
        self,
        code: str,
        *,
        num: int | None = None,
        next_key: str | None = None,
        since: dt.date | str | None = None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> Generator[ShortInterestPage, None, None]:
        """``code``'s history page by page, as `Client.iter_short_interest`, as a plain iterator.

        Each page is fetched when the previous one has been consumed. Leaving the loop early
        (``break``) releases the walk; wrap it in ``contextlib.closing`` to release it at once
        when the iterator is kept around.
        """

        def make() -> AsyncIterator[ShortInterestPage]:
            return self._client.iter_short_interest(
                code, num=num, next_key=next_key, since=since, timeout=timeout
            )

        return self._iterate(make)

    def fetch_short_interest(
        self,
        code: str,
        *,
        num: int = 50,
        since: dt.date | str | None = None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
    ) -> pd.DataFrame:
        """``code``'s whole history (or back to ``since``) as one DataFrame, newest first."""

        async def fetch() -> pd.DataFrame:
            return await self._client.fetch_short_interest(
                code, num=num, since=since, timeout=timeout
            )

        return self._call(fetch)

    def iter_short_interest_many(
        self,
        codes: Iterable[str],
        *,
        since: dt.date | str | None = None,
        num: int = 50,
        concurrency: int = 4,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Generator[SymbolResult, None, None]:
        """Many codes' histories fetched concurrently; each `SymbolResult` as it completes.

        As `Client.iter_short_interest_many`, as a plain iterator; leaving it early cancels the
        walks still running.
        """
        codes = list(codes) if not isinstance(codes, str) else codes

        def make() -> AsyncIterator[SymbolResult]:
            return self._client.iter_short_interest_many(
                codes, since=since, num=num, concurrency=concurrency, on_progress=on_progress
            )

        return self._iterate(make)

    def fetch_short_interest_many(
        self,
        codes: Iterable[str],
        *,
        since: dt.date | str | None = None,
        num: int = 50,
        concurrency: int = 4,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> pd.DataFrame:
        """Many codes' histories in one DataFrame with a ``code`` column, as
        `Client.fetch_short_interest_many` (`FetchManyError` keeps what did arrive)."""
        codes = list(codes) if not isinstance(codes, str) else codes

        async def fetch() -> pd.DataFrame:
            return await self._client.fetch_short_interest_many(
                codes, since=since, num=num, concurrency=concurrency, on_progress=on_progress
            )

        return self._call(fetch)
