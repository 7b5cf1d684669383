"""`SimulatorThread`: an `OpenDSimulator` on an event loop of its own, for synchronous code.

The official SDK, a notebook or a synchronous test cannot ``await`` the simulator; this starts it
in a daemon thread, hands back the started simulator once it listens (or the error that kept it
from starting), and stops it when the ``with`` block ends.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from ._simulator import OpenDSimulator

__all__ = ["SimulatorThread"]


class SimulatorThread:
    """Run an `OpenDSimulator` on its own event loop in a background thread.

    For synchronous code (the official SDK, a notebook): ``with SimulatorThread() as sim:``
    yields the started simulator; its ``host`` and ``port`` are ready to connect to. Keyword
    arguments go to `OpenDSimulator`; an error it raises while starting (a bad argument, a port
    in use) is raised by the ``with`` statement in the caller's thread. Leaving the block stops
    the simulator, drops its connections and waits for the thread to end.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: object) -> None:
        self._args = (host, port)
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.simulator: OpenDSimulator | None = None

    def __enter__(self) -> OpenDSimulator:
        self._thread = threading.Thread(target=self._run, name="opend-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self.simulator is not None
        return self.simulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.simulator = OpenDSimulator(*self._args, **self._options)  # type: ignore[arg-type]
            await self.simulator.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.simulator.close()
