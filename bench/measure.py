"""The measurements, each a function of the plan that adds its raw numbers to ``results``.

Nothing here summarises: every round's numbers are kept as measured, so the report can show the
median and the spread of each figure, and ratios round by round.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lean_server import ServerProcess
from workers import Worker

__all__ = [
    "cpu_rounds",
    "history_rounds",
    "import_baseline",
    "job_rounds",
    "log",
    "walk_rounds",
]

BENCH = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summarise_pages(raw: dict[str, Any]) -> dict[str, float]:
    pages = raw["pages"]
    summary = {
        "pages_per_s": pages / raw["wall"],
        "cpu_us_per_page": raw["cpu"] / pages * 1e6,
        "wall": raw["wall"],
    }
    latencies = raw.get("latencies")
    if latencies:
        ordered = sorted(latencies)
        summary["p50_us"] = statistics.median(ordered) * 1e6
        summary["p99_us"] = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] * 1e6
    return summary


def _series(plan: Any) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Per worker, the (series, method, arguments) it measures each round."""
    n = plan.tasks
    ours = [
        ("{loop}_1", "pages", {"n": plan.ours_pages, "tasks": 1}),
        (f"{{loop}}_{n}", "pages", {"n": plan.concurrent_pages, "tasks": n}),
    ]
    return {
        "official": [
            ("official_1", "pages", {"n": plan.official_pages, "tasks": 1}),
            (f"official_{n}", "pages", {"n": plan.official_pages, "tasks": n}),
            ("micro_official", "micro", {"n": plan.micro_pages}),
        ],
        "aiomoomoo": [
            *((name.format(loop="asyncio"), m, a) for name, m, a in ours),
            ("micro_ours", "micro", {"n": plan.micro_pages}),
            # Diagnostics: the request path without frames, and the offline steps one by one.
            ("asyncio_1_noframe", "pages", {"n": plan.ours_pages * 2, "tasks": 1, "frames": False}),
            (
                f"asyncio_{n}_noframe",
                "pages",
                {"n": plan.concurrent_pages * 4, "tasks": n, "frames": False},
            ),
            ("breakdown", "breakdown", {"n": plan.micro_pages}),
        ],
        "aiomoomoo-uvloop": [(name.format(loop="uvloop"), m, a) for name, m, a in ours],
    }


def cpu_rounds(plan: Any, results: dict[str, Any]) -> None:
    """Throughput, CPU per page and latency of every client, each round in a rotated order."""
    series = _series(plan)
    runs: dict[str, list[dict[str, float]]] = {
        name: [] for steps in series.values() for name, _, _ in steps
    }
    with ServerProcess() as server:
        log(f"lean server on port {server.port}; starting the client workers")
        workers = {kind: Worker(kind) for kind in series}
        try:
            for worker in workers.values():
                worker.call("connect", host=server.host, port=server.port)
            served0 = server.stats()
            kinds = list(series)
            for round_no in range(plan.rounds):
                shift = round_no % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    for name, method, kwargs in series[kind]:
                        raw = workers[kind].call(method, **kwargs)
                        runs[name].append(raw if method == "breakdown" else _summarise_pages(raw))
                n = plan.tasks
                log(
                    f"round {round_no + 1}/{plan.rounds}: CPU µs/page official "
                    f"{runs['official_1'][-1]['cpu_us_per_page']:.0f} (1 thread) "
                    f"{runs[f'official_{n}'][-1]['cpu_us_per_page']:.0f} ({n}), asyncio "
                    f"{runs['asyncio_1'][-1]['cpu_us_per_page']:.0f} (1 task) "
                    f"{runs[f'asyncio_{n}'][-1]['cpu_us_per_page']:.0f} ({n}), uvloop "
                    f"{runs['uvloop_1'][-1]['cpu_us_per_page']:.0f} "
                    f"{runs[f'uvloop_{n}'][-1]['cpu_us_per_page']:.0f}"
                )
            served1 = server.stats()
        finally:
            for worker in workers.values():
                worker.stop()
    pages = served1["pages"] - served0["pages"]
    results["server_cpu_us_per_page"] = (served1["cpu"] - served0["cpu"]) / pages * 1e6
    results["cpu"] = runs


def walk_rounds(plan: Any, results: dict[str, Any]) -> None:
    """RSS along a long ``iter_short_interest`` walk, each round in a fresh process."""
    walks = []
    with ServerProcess(walk_pages=plan.walk_pages) as server:
        for round_no in range(plan.walk_rounds):
            with Worker("aiomoomoo") as worker:
                raw = worker.call("walk", host=server.host, port=server.port, marks=plan.walk_marks)
            if raw["pages"] != plan.walk_pages:
                raise RuntimeError(f"the walk ended after {raw['pages']} pages")
            walks.append(raw)
            last = raw["rss"][plan.walk_marks[-1]]["peak_kib"]
            log(
                f"walk {round_no + 1}/{plan.walk_rounds}: {raw['pages']} pages in "
                f"{raw['wall']:.1f} s, peak RSS {last / 1024:.1f} MiB "
                f"(before the walk {raw['rss_before_kib'] / 1024:.1f})"
            )
    results["walks"] = walks


def history_rounds(plan: Any, results: dict[str, Any]) -> None:
    """Peak memory of ``fetch_short_interest`` over the long walk against its frame's size."""
    runs = []
    with ServerProcess(walk_pages=plan.walk_pages) as server:
        for round_no in range(plan.walk_rounds):
            with Worker("aiomoomoo") as worker:
                raw = worker.call("history_memory", host=server.host, port=server.port)
            if raw["rows"] != plan.walk_pages * 50:
                raise RuntimeError(f"the history holds {raw['rows']} rows")
            runs.append(raw)
            growth = (raw["peak_kib"] - raw["rss_before_kib"]) / 1024
            log(
                f"fetch {round_no + 1}/{plan.walk_rounds}: {raw['rows']:,} rows in "
                f"{raw['wall']:.1f} s, peak growth {growth:.1f} MiB for a "
                f"{raw['frame_kib'] / 1024:.1f} MiB frame"
            )
    results["history"] = runs


_IMPORTS = {
    "nothing (the interpreter alone)": "",
    "numpy": "import numpy",
    "pandas, with pyarrow kept out": "import sys; sys.modules['pyarrow'] = None; import pandas",
    "pandas (which loads pyarrow when it is installed)": "import pandas",
    "aiomoomoo (pandas, numpy, protobuf)": "import aiomoomoo",
    "the official moomoo-api": "import moomoo",
}


def import_baseline(plan: Any, results: dict[str, Any]) -> None:
    """Resident memory of a fresh interpreter after each set of imports, before any work."""
    baseline: dict[str, list[int]] = {name: [] for name in _IMPORTS}
    probe = f"import sys; sys.path.insert(0, {str(BENCH)!r}); from probes import rss_kib"
    for _ in range(plan.import_rounds):
        for name, statement in _IMPORTS.items():
            code = f"{statement}\n{probe}\nprint(rss_kib())"
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            baseline[name].append(int(out.stdout.split()[-1]))
    log(
        "import baseline (MiB): "
        + ", ".join(f"{k} {statistics.median(v) / 1024:.1f}" for k, v in baseline.items())
    )
    results["imports"] = baseline


def job_rounds(plan: Any, results: dict[str, Any]) -> None:
    """The quota-bound job: every page of a universe of codes under a short strict window.

    Each run gets a fresh simulator (a fresh window and fresh counters) on a thread of this
    process; the clients run in their workers.
    """
    from aiomoomoo.testing import OpenDSimulator, Quota, SimulatorThread

    codes, n, period = list(plan.job_codes), plan.job_max, plan.job_period
    variants = {
        "ours": ("aiomoomoo", {"limiter": "sliding"}),
        "ours_paced": ("aiomoomoo", {"limiter": "paced"}),
        "official_sleep": ("official", {"pacing": "sleep"}),
        "official_retry": ("official", {"pacing": "retry"}),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    # Unstarted: the same seed gives the same histories as every simulator below.
    reference = OpenDSimulator()
    minimum = sum(max(1, math.ceil(len(reference.history(code)) / 50)) for code in codes)
    workers = {kind: Worker(kind) for kind in ("aiomoomoo", "official")}
    try:
        names = list(variants)
        for round_no in range(plan.job_rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                kind, kwargs = variants[name]
                with SimulatorThread(quota=Quota(n, period)) as simulator:
                    raw = workers[kind].call(
                        "job",
                        host=simulator.host,
                        port=simulator.port,
                        codes=codes,
                        max_requests=n,
                        period=period,
                        **kwargs,
                    )
                    raw["requests"] = simulator.stats.requests
                    raw["rate_limited"] = simulator.stats.rate_limited
                runs[name].append(raw)
                log(
                    f"job {round_no + 1}/{plan.job_rounds} {name}: {raw['wall']:.2f} s, "
                    f"{raw['requests']} requests ({minimum} needed), "
                    f"{raw['rate_limited']} refused"
                )
    finally:
        for worker in workers.values():
            worker.stop()
    results["job"] = {
        "codes": codes,
        "max_requests": n,
        "period": period,
        "minimum": minimum,
        "optimum_s": period * (math.ceil(minimum / n) - 1),
        "runs": runs,
    }
