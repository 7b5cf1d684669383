"""The official ``moomoo-api`` client's side of every measurement, inside a worker process.

It is used the way its documentation shows: synchronous calls on an ``OpenQuoteContext``, from
one thread, or from several threads sharing the context. The SDK is imported only here, never in
aiomoomoo's workers.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from page import CODE, ROWS, page_body
from probes import MICRO_KEY

__all__ = ["OfficialRunner"]

# How OpenD (and the simulator, which speaks its texts) words a quota refusal, in English and
# Chinese: what a user of the official client would have to look for.
_RATE_LIMITED = re.compile(r"too frequent|rate limit|频繁|頻繁")


class OfficialRunner:
    """The official client, with its log levels at WARNING, as its production advice says."""

    def __init__(self) -> None:
        import logging

        import moomoo
        from moomoo import SysConfig

        # At its default (DEBUG to a file) every request also formats and writes a log line
        # with a stack walk, which would measure its logger, not its client.
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
        """``n`` pages from ``tasks`` threads sharing the one context (1: the calling thread)."""
        page, perf = self._page, time.perf_counter
        latencies: list[float] = []
        errors: list[BaseException] = []

        def walk(count: int) -> None:
            mine = [0.0] * count
            try:
                for i in range(count):
                    start = perf()
                    page()
                    mine[i] = perf() - start
            except BaseException as exc:
                errors.append(exc)
            latencies.extend(mine)

        share, extra = divmod(n, tasks)
        threads = [threading.Thread(target=walk, args=(share + (i < extra),)) for i in range(tasks)]
        gc.collect()
        cpu0, wall0 = time.process_time(), perf()
        if tasks == 1:
            walk(n)
        else:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        wall, cpu = perf() - wall0, time.process_time() - cpu0
        if errors:
            raise errors[0]
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

        body = page_body(MICRO_KEY)
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

    def job(
        self, host: str, port: int, codes: list[str], pacing: str, max_requests: int, period: float
    ) -> dict[str, Any]:
        """Every page of ``codes``, one code after another, under a strict quota.

        ``pacing`` is ``"sleep"``: ``time.sleep(period / max_requests)`` between requests, so
        no window ever holds too many; or ``"retry"``: requests as fast as replies come, and a
        request OpenD refuses for the quota is sent again after ``period / max_requests``
        seconds. Returns the wall time, when each page arrived, and the refusals seen.
        """
        if pacing not in ("sleep", "retry"):
            raise ValueError(f"unknown pacing {pacing!r}")
        pause = period / max_requests
        context = self._moomoo.OpenQuoteContext(host=host, port=port)
        try:
            pages: list[float] = []
            refused = rows = sent = 0
            start = time.perf_counter()
            for code in codes:
                next_key = None
                while True:
                    if pacing == "sleep" and sent:
                        time.sleep(pause)
                    ret, us, hk = context.get_short_interest(code, next_key=next_key, num=ROWS)
                    sent += 1
                    if ret != 0:
                        if pacing == "retry" and _RATE_LIMITED.search(str(us)):
                            refused += 1
                            time.sleep(pause)
                            continue
                        raise RuntimeError(f"official get_short_interest({code}) failed: {us}")
                    pages.append(time.perf_counter() - start)
                    frame = us if code.startswith("US.") else hk
                    rows += len(frame)
                    next_key = frame.attrs.get("next_key", "-1")
                    if next_key in (None, "", "-1"):
                        break
            wall = time.perf_counter() - start
        finally:
            context.close()
        return {"wall": wall, "pages": pages, "rows": rows, "refused": refused}

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None
