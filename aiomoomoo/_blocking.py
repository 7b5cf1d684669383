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
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import pandas as pd

from ._client import Client, GlobalState, ShortInterestPage
from ._connection import ConnectionInfo
from ._errors import ClientClosedError
from ._loop_thread import LoopThread
from ._many import Progress, SymbolResult
from ._options import CLIENT_TIMEOUT, _ClientTimeout
from ._quota import SlidingWindowLimiter
from ._rate_limit import RequestLimiter

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["BlockingClient"]

_T = TypeVar("_T")

#: The longest a client left open waits for its loop to wind down, when it is garbage collected
#: or the interpreter exits: a script that forgot close() still exits at once.
_ABANDON_WAIT: Final = 1.0


class _End:
    """Marks the end of an async iterator handed across the portal (StopAsyncIteration is not
    a value a future should carry)."""


_END: Final = _End()


class _Loop:
    """A `BlockingClient`'s loop thread, started on first use and stopped once.

    Apart from the `BlockingClient`, so that its finalizer can stop the loop without keeping
    the client alive.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.thread: LoopThread | None = None
        self.closed = False
        self._lock = threading.Lock()

    def start(self, thread_name: str, client_name: str) -> LoopThread:
        """The running loop thread, started if need be; `ClientClosedError` once stopped."""
        with self._lock:
            if self.closed:
                raise ClientClosedError(f"{client_name} is closed; create a new client")
            if self.thread is None:
                self.thread = LoopThread(thread_name)
            return self.thread

    def stop(self, wait: float | None) -> None:
        """Close the client on the loop, cancel what is left there (a call queued for a quota
        slot: its caller sees ClientClosedError) and end the thread; ``wait`` bounds it all."""
        with self._lock:
            # Only the first caller stops the thread; the others find nothing left to stop.
            self.closed = True
            thread, self.thread = self.thread, None
        if thread is not None:
            thread.stop(self.client.close, wait)

    def abandon(self) -> None:
        """The finalizer: the `BlockingClient` was collected, or the interpreter is exiting,
        while it was open. Warn if it was connected (as `Client` does), and stop it."""
        if self.closed or self.thread is None:
            return
        connected = self.client.connection_info is not None
        message = f"unclosed <BlockingClient of {self.client!r}>; use 'with' or close()"
        self.stop(wait=_ABANDON_WAIT)
        if connected:
            warnings.warn(message, ResourceWarning, stacklevel=1, source=self.client)


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
    and stops the thread. A client left open closes itself when collected or at interpreter exit
    (a script always exits), with a ``ResourceWarning`` if it was connected.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 11111, **options: Any) -> None:
        # Built here, so a bad option raises in the caller's thread before any thread starts.
        self._client = Client(host, port, **options)
        self._loop = _Loop(self._client)
        # Runs when the client is collected, or at interpreter exit (from an atexit hook, so
        # after non-daemon threads end and before daemon threads freeze) if still open.
        self._finalizer = weakref.finalize(self, self._loop.abandon)

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
        return self._loop.closed

    @property
    def _loop_thread_id(self) -> int | None:
        thread = self._loop.thread
        return None if thread is None else thread.ident

    # -- lifecycle ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect now (``with`` does this); `ConnectError` if OpenD is not there."""
        self._call(self._client.connect)

    def close(self) -> None:
        """Close the connection and stop the loop thread; calls still waiting fail at once.

        Calls in progress in other threads raise `ClientClosedError`; closing twice is fine.
        """
        if threading.get_ident() == self._loop_thread_id:
            raise RuntimeError("a BlockingClient cannot be closed from its own callbacks")
        self._finalizer.detach()
        self._loop.stop(wait=None)

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

    # -- calls into the loop -----------------------------------------------------------------

    def _running_portal(self) -> BlockingPortal:
        return self._loop.start(f"aiomoomoo {self.host}:{self.port}", self._name).portal

    def _call(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``function(*args)`` on the loop and wait for it; an interrupted wait cancels it."""
        portal = self._running_portal()
        try:
            future = portal.start_task_soon(function, *args)
        except RuntimeError:
            if self.closed:  # close() won the race for the portal
                raise ClientClosedError(f"{self._name} was closed") from None
            raise
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self.closed:
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
            if aclose is not None and not self.closed:
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
