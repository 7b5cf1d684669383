"""aiomoomoo's side of every measurement, run inside a worker process (see :mod:`workers`).

One event loop lives as long as the worker: asyncio's own, or uvloop's when the worker is started
as ``"aiomoomoo-uvloop"``. Every method returns plain data that pickles through the pipe.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from page import CODE, ROWS, page_body
from probes import MICRO_KEY, peak_rss_kib, rss_kib

__all__ = ["OursRunner"]


class OursRunner:
    """aiomoomoo on one event loop: ``loop`` is ``"asyncio"`` or ``"uvloop"``."""

    def __init__(self, loop: str = "asyncio") -> None:
        import aiomoomoo

        self._aiomoomoo = aiomoomoo
        if loop == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        elif loop == "asyncio":
            self.loop = asyncio.new_event_loop()
        else:
            raise ValueError(f"unknown event loop {loop!r}")
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
        """``decode_short_interest`` + ``rows_to_frame`` on the precomputed body, no socket."""
        from aiomoomoo._frames import rows_to_frame
        from aiomoomoo._messages import decode_short_interest

        body = page_body(MICRO_KEY)
        parse, build = decode_short_interest, rows_to_frame
        if len(build(parse(body).us)) != ROWS:
            raise RuntimeError("offline aiomoomoo parse failed")
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            build(parse(body).us)
        return {"pages": n, "wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}

    def breakdown(self, n: int) -> dict[str, float]:
        """CPU microseconds per page of each offline step.

        ``decode_us`` decodes the body into plain columns (the message layer's whole work);
        ``frame_us`` builds the frame from columns decoded before; ``fresh_us`` decodes and builds
        from a fresh body each time. ``floor_us`` is pandas assembling eight ready-made
        50-element columns of the same dtypes by the unchecked ``DataFrame._from_arrays`` path
        aiomoomoo itself uses: what any frame of these columns costs at least.
        """
        import pandas as pd

        from aiomoomoo._frames import rows_to_frame
        from aiomoomoo._messages import decode_short_interest

        body = page_body(MICRO_KEY)
        parse = decode_short_interest
        rows = parse(body).us
        ready = {name: column.array for name, column in rows_to_frame(rows).items()}
        arrays, columns = list(ready.values()), pd.Index(list(ready))

        def cpu_us(step: Callable[[], object]) -> float:
            gc.collect()
            start = time.process_time()
            for _ in range(n):
                step()
            return (time.process_time() - start) / n * 1e6

        return {
            "decode_us": cpu_us(lambda: parse(body)),
            "frame_us": cpu_us(lambda: rows_to_frame(rows)),
            "fresh_us": cpu_us(lambda: rows_to_frame(parse(body).us)),
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
            async with self._aiomoomoo.Client(host, port, rate_limit=None) as client:
                gc.collect()
                before = rss_kib()
                start = time.perf_counter()
                async for page in client.iter_short_interest(CODE, num=ROWS):
                    if len(page.us) != ROWS:
                        raise RuntimeError(f"short page: {page!r}")
                    count += 1
                    if count in marks:
                        rss[count] = {"rss_kib": rss_kib(), "peak_kib": peak_rss_kib()}
            return {
                "pages": count,
                "wall": time.perf_counter() - start,
                "rss_before_kib": before,
                "rss": rss,
            }

        return self._run(run())  # type: ignore[no-any-return]

    def history_memory(self, host: str, port: int) -> dict[str, Any]:
        """``fetch_short_interest`` over a lean server's whole long walk, in a fresh process.

        Returns the resident set before the walk, the peak during it (``ru_maxrss``: the walk
        is the largest thing this process ever holds) and the finished frame's own size
        (``memory_usage(deep=True)``), in KiB.
        """

        async def run() -> dict[str, Any]:
            async with self._aiomoomoo.Client(host, port, rate_limit=None) as client:
                gc.collect()
                before = rss_kib()
                start = time.perf_counter()
                frame = await client.fetch_short_interest(CODE, num=ROWS)
                wall = time.perf_counter() - start
                return {
                    "rows": len(frame),
                    "wall": wall,
                    "rss_before_kib": before,
                    "peak_kib": peak_rss_kib(),
                    "frame_kib": int(frame.memory_usage(deep=True).sum()) / 1024,
                }

        return self._run(run())  # type: ignore[no-any-return]

    def job(
        self, host: str, port: int, codes: list[str], limiter: str, max_requests: int, period: float
    ) -> dict[str, Any]:
        """Every page of ``codes`` with `fetch_short_interest_many`, under a strict quota.

        ``limiter`` is ``"sliding"`` (``rate_limit=(max_requests, period)``, aiomoomoo's own) or
        ``"paced"`` (``aiolimiter.AsyncLimiter(1, period / max_requests)``: one request every
        ``period / max_requests`` seconds, which a strict window never refuses). Returns the wall
        time and when each page arrived, counted from the start.
        """
        if limiter == "sliding":
            rate_limit: object = (max_requests, period)
        elif limiter == "paced":
            import aiolimiter

            rate_limit = aiolimiter.AsyncLimiter(1, period / max_requests)
        else:
            raise ValueError(f"unknown limiter {limiter!r}")

        async def run() -> dict[str, Any]:
            async with self._aiomoomoo.Client(host, port, rate_limit=rate_limit) as client:
                pages: list[float] = []
                start = time.perf_counter()

                def on_progress(progress: Any) -> None:
                    if progress.event == "page":
                        pages.append(time.perf_counter() - start)

                frame = await client.fetch_short_interest_many(codes, on_progress=on_progress)
                return {"wall": time.perf_counter() - start, "pages": pages, "rows": len(frame)}

        return self._run(run())  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.client is not None:
            self._run(self.client.close())
            self.client = None
