"""The measuring side: one worker process per client, driven over a pipe by :mod:`run`.

Each client lives in a process of its own, so ``time.process_time()`` there is that client's CPU
and nothing else's: not the lean server's (another process), not the other client's (idle in
its own process, blocked on the pipe, while this one runs), not the orchestrator's. The official
SDK is imported only in its worker and aiomoomoo's worker never imports it.

Every method returns plain data (floats, lists) that pickles through the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any

from page import CODE, ROWS, page_body

__all__ = ["Worker"]

_MICRO_KEY = "1700000000"


def _rss_kib() -> int:
    """Resident set size right now, KiB (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak_rss_kib() -> int:
    """Peak resident set size so far, KiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class OfficialRunner:
    """The official ``moomoo-api`` client, used the way its docs show: sync, one thread."""

    def __init__(self) -> None:
        import logging

        import moomoo
        from moomoo import SysConfig

        # The SDK's production advice (ft_logger.debug_model): logs at WARNING. At its default
        # (DEBUG to a file) every request also formats and writes a log line with a stack walk,
        # which would measure its logger, not its client.
        moomoo.logger.file_level = logging.WARNING
        moomoo.logger.console_level = logging.WARNING
        # Daemon threads, so a failed run cannot hang the process at exit.
        SysConfig.set_all_thread_daemon(True)
        self._moomoo = moomoo
        self.context: Any = None

    def connect(self, host: str, port: int, warmup: int = 200) -> None:
        self.context = self._moomoo.OpenQuoteContext(host=host, port=port)
        for _ in range(warmup):
            self._page()

    def _page(self) -> object:
        ret, us, _hk = self.context.get_short_interest(CODE, num=ROWS)
        if ret != 0 or len(us) != ROWS:
            raise RuntimeError(f"official get_short_interest failed: {ret!r} {us!r}")
        return us

    def pages(self, n: int, tasks: int = 1) -> dict[str, Any]:
        if tasks != 1:
            raise ValueError("the official client is synchronous: one task")
        page, perf = self._page, time.perf_counter
        latencies = [0.0] * n
        gc.collect()
        cpu0, wall0 = time.process_time(), perf()
        for i in range(n):
            start = perf()
            page()
            latencies[i] = perf() - start
        wall, cpu = perf() - wall0, time.process_time() - cpu0
        return {"pages": n, "wall": wall, "cpu": cpu, "latencies": latencies}

    def micro(self, n: int) -> dict[str, Any]:
        """Decode + row dicts + DataFrames through the SDK's own code, with the socket cut out.

        ``get_short_interest`` is called on a context whose sync query processor is replaced by
        one that parses the precomputed body with the SDK's ``binary2pb`` and runs its
        ``GetShortInterestQuery.unpack``: everything the SDK does with a reply except waiting
        for it.
        """
        from moomoo import OpenQuoteContext
        from moomoo.common.utils import binary2pb

        body = page_body(_MICRO_KEY)
        offline = OpenQuoteContext.__new__(OpenQuoteContext)

        def processor(pack: Callable[..., Any], unpack: Callable[..., Any]) -> Callable[..., Any]:
            return lambda **_: unpack(binary2pb(body, 3249, 0))

        offline._get_sync_query_processor = processor
        offline.get_sync_conn_id = lambda: 0
        ret, us, _hk = offline.get_short_interest(CODE, num=ROWS)
        if ret != 0 or len(us) != ROWS:
            raise RuntimeError(f"offline official parse failed: {ret!r} {us!r}")
        call = offline.get_short_interest
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            call(CODE, num=ROWS)
        return {"pages": n, "wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None


class OursRunner:
    """aiomoomoo on one event loop that lives as long as the worker."""

    def __init__(self) -> None:
        import aiomoomoo

        self._aiomoomoo = aiomoomoo
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.client: Any = None

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def connect(self, host: str, port: int, warmup: int = 200) -> None:
        async def connect() -> None:
            self.client = self._aiomoomoo.Client(host, port, rate_limit=None)
            await self.client.connect()
            for _ in range(warmup):
                page = await self.client.get_short_interest(CODE, num=ROWS)
                if len(page.us) != ROWS:
                    raise RuntimeError(f"short page: {page!r}")

        self._run(connect())

    def pages(self, n: int, tasks: int = 1, frames: bool = True) -> dict[str, Any]:
        """``n`` pages split over ``tasks`` tasks on the one client, each page's ``.us`` built.

        ``frames=False`` leaves ``.us`` unread: a diagnostic of what the request path costs
        without the DataFrame (not comparable with the official client, which always builds).
        """
        client, perf = self.client, time.perf_counter
        latencies: list[float] = []
        record = latencies.append

        async def walk(count: int) -> None:
            for _ in range(count):
                start = perf()
                page = await client.get_short_interest(CODE, num=ROWS)
                if (len(page.us) if frames else len(page)) != ROWS:
                    raise RuntimeError(f"short page: {page!r}")
                record(perf() - start)

        async def run() -> None:
            share, extra = divmod(n, tasks)
            await asyncio.gather(*(walk(share + (i < extra)) for i in range(tasks)))

        gc.collect()
        cpu0, wall0 = time.process_time(), perf()
        self._run(run())
        wall, cpu = perf() - wall0, time.process_time() - cpu0
        return {"pages": n, "wall": wall, "cpu": cpu, "latencies": latencies}

    def micro(self, n: int) -> dict[str, Any]:
        """``Response.FromString`` + ``rows_to_frame`` on the precomputed body, no socket."""
        from aiomoomoo._frames import rows_to_frame
        from aiomoomoo._proto import Qot_GetShortInterest_pb2
        from aiomoomoo._security import Market

        body = page_body(_MICRO_KEY)
        parse, build, us = Qot_GetShortInterest_pb2.Response.FromString, rows_to_frame, Market.US
        if len(build(us, parse(body).s2c.usItemList)) != ROWS:
            raise RuntimeError("offline aiomoomoo parse failed")
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            build(us, parse(body).s2c.usItemList)
        return {"pages": n, "wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}

    def breakdown(self, n: int) -> dict[str, float]:
        """CPU microseconds per page of each offline step: decode, frame, and pandas' own floor.

        ``floor`` is pandas assembling eight ready-made 50-element columns of the same dtypes
        into a frame, by the unchecked ``DataFrame._from_arrays`` path aiomoomoo itself uses:
        what any frame of these columns costs at least.
        """
        import pandas as pd

        from aiomoomoo._frames import rows_to_frame
        from aiomoomoo._proto import Qot_GetShortInterest_pb2
        from aiomoomoo._security import Market

        body = page_body(_MICRO_KEY)
        parse = Qot_GetShortInterest_pb2.Response.FromString
        items = parse(body).s2c.usItemList
        ready = {name: column.array for name, column in rows_to_frame(Market.US, items).items()}
        arrays, columns = list(ready.values()), pd.Index(list(ready))

        def cpu_us(step: Callable[[], object]) -> float:
            gc.collect()
            start = time.process_time()
            for _ in range(n):
                step()
            return (time.process_time() - start) / n * 1e6

        return {
            "decode_us": cpu_us(lambda: parse(body)),
            "frame_us": cpu_us(lambda: rows_to_frame(Market.US, items)),
            "floor_us": cpu_us(
                lambda: pd.DataFrame._from_arrays(
                    arrays, columns=columns, index=pd.RangeIndex(ROWS), verify_integrity=False
                )
            ),
        }

    def walk(self, host: str, port: int, marks: tuple[int, ...]) -> dict[str, Any]:
        """Iterate a lean server's long walk to the end, noting RSS when page ``mark`` arrives."""

        async def run() -> dict[str, Any]:
            rss: dict[int, dict[str, int]] = {}
            count = 0
            start = time.perf_counter()
            async with self._aiomoomoo.Client(host, port, rate_limit=None) as client:
                async for page in client.iter_short_interest(CODE, num=ROWS):
                    if len(page.us) != ROWS:
                        raise RuntimeError(f"short page: {page!r}")
                    count += 1
                    if count in marks:
                        rss[count] = {"rss_kib": _rss_kib(), "peak_kib": _peak_rss_kib()}
            return {"pages": count, "wall": time.perf_counter() - start, "rss": rss}

        return self._run(run())  # type: ignore[no-any-return]

    def quota(
        self, limiter: str, requests: int, max_requests: int, period: float
    ) -> dict[str, Any]:
        """``requests`` one-page requests from as many tasks, through ``limiter``, to the simulator.

        ``limiter`` is ``"sliding"`` (``rate_limit=(max_requests, period)``, aiomoomoo's own
        limiter) or ``"aiolimiter"`` (``aiolimiter.AsyncLimiter(max_requests, period)``). The
        simulator, with the same strict quota, runs on a thread of this process.
        """
        from aiomoomoo.testing import Quota, SimulatorThread

        if limiter == "sliding":
            rate_limit: object = (max_requests, period)
        elif limiter == "aiolimiter":
            import aiolimiter

            rate_limit = aiolimiter.AsyncLimiter(max_requests, period)
        else:
            raise ValueError(f"unknown limiter {limiter!r}")

        async def run(host: str, port: int) -> tuple[float, list[float]]:
            async with self._aiomoomoo.Client(host, port, rate_limit=rate_limit) as client:
                start = time.perf_counter()
                done: list[float] = []

                async def one() -> None:
                    await client.get_short_interest(CODE, num=ROWS)
                    done.append(time.perf_counter() - start)

                await asyncio.gather(*(one() for _ in range(requests)))
                return time.perf_counter() - start, sorted(done)

        with SimulatorThread(quota=Quota(max_requests, period)) as simulator:
            elapsed, done = self._run(run(simulator.host, simulator.port))
            stats = simulator.stats
            return {
                "elapsed": elapsed,
                "completions": done,
                "rate_limited": stats.rate_limited,
                "served": stats.requests,
            }

    def close(self) -> None:
        if self.client is not None:
            self._run(self.client.close())
            self.client = None


_RUNNERS: dict[str, Callable[[], Any]] = {"official": OfficialRunner, "aiomoomoo": OursRunner}


def _serve(control: multiprocessing.connection.Connection, kind: str) -> None:
    try:
        runner = _RUNNERS[kind]()
        control.send(("ok", None))
    except BaseException:
        control.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            method, kwargs = control.recv()
        except EOFError:
            break
        if method == "exit":
            runner.close()
            control.send(("ok", None))
            break
        try:
            result = getattr(runner, method)(**kwargs)
        except BaseException:
            control.send(("error", traceback.format_exc()))
        else:
            control.send(("ok", result))


class Worker:
    """A child process holding one client; ``call("pages", n=1000)`` runs a method there."""

    def __init__(self, kind: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.kind = kind
        self._control, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kind), name=f"bench-{kind}")
        self.process.start()
        child.close()
        self._reply()

    def _reply(self) -> Any:
        status, value = self._control.recv()
        if status != "ok":
            raise RuntimeError(f"{self.kind} worker failed:\n{value}")
        return value

    def call(self, method: str, **kwargs: Any) -> Any:
        self._control.send((method, kwargs))
        return self._reply()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(EOFError, BrokenPipeError, OSError, RuntimeError):
                self.call("exit")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self._control.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
