"""An event loop on a daemon thread of its own, reached through an anyio blocking portal.

`BlockingClient` runs its `Client` here. Nothing ever waits for this thread without a bound, so
a script still exits when it forgets to close its client. (anyio's ``start_blocking_portal``
joins its thread when its context manager ends, and when that end comes from the garbage
collector at interpreter exit, after the interpreter has frozen every daemon thread, the join
never returns.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["LoopThread"]


class LoopThread:
    """A daemon thread running an asyncio event loop and a portal into it, started at once."""

    def __init__(self, name: str) -> None:
        # Imported here: `import aiomoomoo` should not pay for anyio's portal.
        from anyio.from_thread import BlockingPortal

        started: concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]
        started = concurrent.futures.Future()

        async def serve() -> None:
            async with BlockingPortal() as portal:
                started.set_result((portal, asyncio.get_running_loop()))
                await portal.sleep_until_stopped()

        def run() -> None:
            import anyio

            try:
                anyio.run(serve, backend="asyncio")
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        self.portal, self._loop = started.result()
        #: The loop thread's id, to refuse what would wait for the loop from the loop itself.
        self.ident = self._thread.ident

    def stop(self, last: Callable[[], Awaitable[object]], wait: float | None) -> None:
        """Await ``last()`` on the loop, then cancel what still runs there and end the thread.

        Waits at most ``wait`` seconds in all (None: as long as it takes; from the loop thread
        itself: not at all). A loop that does not answer in time is left running: it is a daemon
        thread, which the interpreter does not wait for at exit. An exception from ``last()`` is
        raised here when it is waited for.
        """
        portal = self.portal

        async def wind_down() -> None:
            try:
                await last()
            finally:
                await portal.stop(cancel_remaining=True)

        own_thread = threading.get_ident() == self.ident
        if own_thread:
            wait = 0.0
        deadline = None if wait is None else time.monotonic() + wait
        coroutine = wind_down()
        try:
            done = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop has already closed
            coroutine.close()
            return
        with contextlib.suppress(TimeoutError, concurrent.futures.CancelledError):
            done.result(wait)
        if not own_thread:
            self._thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
