"""aiomoomoo against the official moomoo client, side by side in one run, against one lean server.

    python bench/run.py [--quick] [--output docs/benchmarks.md] [--json results.json]

Writes the markdown report to ``--output`` and the plot next to it (``benchmarks.png``). Every
measurement is repeated for several rounds, official and aiomoomoo interleaved (the order flips
each round), and the report gives medians. See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for entry in (str(ROOT), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import numpy as np  # noqa: E402
from lean_server import ServerProcess  # noqa: E402
from workers import Worker  # noqa: E402


@dataclass(frozen=True)
class Plan:
    """How much of everything one run does."""

    rounds: int
    official_pages: int
    ours_pages: int
    concurrent_pages: int
    tasks: int
    micro_pages: int
    walk_pages: int
    walk_rounds: int
    walk_marks: tuple[int, ...]
    quota_rounds: int
    quota_requests: int
    quota_max: int
    quota_period: float


FULL = Plan(
    rounds=5,
    official_pages=1500,
    ours_pages=3000,
    concurrent_pages=4000,
    tasks=16,
    micro_pages=1000,
    walk_pages=10_000,
    walk_rounds=3,
    walk_marks=(1_000, 10_000),
    quota_rounds=5,
    quota_requests=90,
    quota_max=30,
    quota_period=3.0,
)
# The same measurements on fewer rounds and pages: a smoke test of the harness.
QUICK = dataclasses.replace(
    FULL,
    rounds=2,
    official_pages=400,
    ours_pages=800,
    concurrent_pages=1000,
    micro_pages=300,
    walk_rounds=1,
    quota_rounds=1,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(np.asarray(latencies), [50, 99])
    return {"p50_us": float(p50) * 1e6, "p99_us": float(p99) * 1e6}


def _summarise_pages(raw: dict[str, Any]) -> dict[str, float]:
    pages = raw["pages"]
    summary = {
        "pages_per_s": pages / raw["wall"],
        "cpu_us_per_page": raw["cpu"] / pages * 1e6,
        "wall": raw["wall"],
    }
    if "latencies" in raw:
        summary.update(_percentiles(raw["latencies"]))
    return summary


def client_rounds(plan: Plan, results: dict[str, Any]) -> None:
    """Throughput, CPU per page, latency and the offline parse, official and ours interleaved."""
    many = f"ours_{plan.tasks}"
    runs: dict[str, list[dict[str, float]]] = {
        name: []
        for name in (
            "official",
            "ours_1",
            many,
            "micro_official",
            "micro_ours",
            "ours_1_noframe",
            f"{many}_noframe",
            "breakdown",
        )
    }
    with ServerProcess() as server:
        log(f"lean server on port {server.port}; starting the two client workers")
        official, ours = Worker("official"), Worker("aiomoomoo")
        try:
            official.call("connect", host=server.host, port=server.port)
            ours.call("connect", host=server.host, port=server.port)
            served0 = server.stats()
            for round_no in range(plan.rounds):

                def run_official() -> None:
                    raw = official.call("pages", n=plan.official_pages)
                    runs["official"].append(_summarise_pages(raw))
                    raw = official.call("micro", n=plan.micro_pages)
                    runs["micro_official"].append(_summarise_pages(raw))

                def run_ours() -> None:
                    raw = ours.call("pages", n=plan.ours_pages, tasks=1)
                    runs["ours_1"].append(_summarise_pages(raw))
                    raw = ours.call("pages", n=plan.concurrent_pages, tasks=plan.tasks)
                    raw.pop("latencies")
                    runs[many].append(_summarise_pages(raw))
                    raw = ours.call("micro", n=plan.micro_pages)
                    runs["micro_ours"].append(_summarise_pages(raw))
                    # Diagnostics: the request path alone, and the offline steps one by one.
                    # Without frames pages come several times faster: more of them, same time.
                    raw = ours.call("pages", n=plan.ours_pages * 2, tasks=1, frames=False)
                    runs["ours_1_noframe"].append(_summarise_pages(raw))
                    raw = ours.call(
                        "pages", n=plan.concurrent_pages * 4, tasks=plan.tasks, frames=False
                    )
                    raw.pop("latencies")
                    runs[f"{many}_noframe"].append(_summarise_pages(raw))
                    runs["breakdown"].append(ours.call("breakdown", n=plan.micro_pages))

                order = (run_official, run_ours) if round_no % 2 == 0 else (run_ours, run_official)
                for step in order:
                    step()
                log(
                    f"round {round_no + 1}/{plan.rounds}: official "
                    f"{runs['official'][-1]['pages_per_s']:.0f} pages/s, ours 1 task "
                    f"{runs['ours_1'][-1]['pages_per_s']:.0f}, ours {plan.tasks} tasks "
                    f"{runs[many][-1]['pages_per_s']:.0f}"
                )
            served1 = server.stats()
        finally:
            official.stop()
            ours.stop()
    pages = served1["pages"] - served0["pages"]
    results["server_cpu_us_per_page"] = (served1["cpu"] - served0["cpu"]) / pages * 1e6
    results["clients"] = runs


def walk_rounds(plan: Plan, results: dict[str, Any]) -> None:
    """Peak RSS along a long walk, each round in a fresh process against a fresh connection."""
    walks = []
    with ServerProcess(walk_pages=plan.walk_pages) as server:
        for round_no in range(plan.walk_rounds):
            with Worker("aiomoomoo") as worker:
                raw = worker.call("walk", host=server.host, port=server.port, marks=plan.walk_marks)
            if raw["pages"] != plan.walk_pages:
                raise RuntimeError(
                    f"the walk ended after {raw['pages']} pages, not {plan.walk_pages}"
                )
            walks.append(raw)
            first, last = (
                raw["rss"][mark]["peak_kib"] for mark in (plan.walk_marks[0], plan.walk_marks[-1])
            )
            log(
                f"walk {round_no + 1}/{plan.walk_rounds}: {raw['pages']} pages in "
                f"{raw['wall']:.1f} s, peak RSS {first / 1024:.1f} -> {last / 1024:.1f} MiB"
            )
    results["walks"] = walks


def quota_rounds(plan: Plan, results: dict[str, Any]) -> None:
    """M requests through a strict N-per-T quota: our sliding window, then aiolimiter."""
    runs: dict[str, list[dict[str, Any]]] = {"sliding": [], "aiolimiter": []}
    with Worker("aiomoomoo") as worker:
        for round_no in range(plan.quota_rounds):
            order = ("sliding", "aiolimiter") if round_no % 2 == 0 else ("aiolimiter", "sliding")
            for limiter in order:
                raw = worker.call(
                    "quota",
                    limiter=limiter,
                    requests=plan.quota_requests,
                    max_requests=plan.quota_max,
                    period=plan.quota_period,
                )
                runs[limiter].append(raw)
                log(
                    f"quota {round_no + 1}/{plan.quota_rounds} {limiter}: {raw['elapsed']:.3f} s, "
                    f"{raw['rate_limited']} rejected"
                )
    results["quota"] = runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and pages (~1 min)")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown report; the plot goes next to it as benchmarks.png",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL

    # Imported here so that the spawned workers, which import this module, stay light.
    import report

    started = time.perf_counter()
    results: dict[str, Any] = {"plan": plan.__dict__, "machine": report.machine()}
    client_rounds(plan, results)
    walk_rounds(plan, results)
    quota_rounds(plan, results)
    results["duration_s"] = time.perf_counter() - started
    log(f"measured in {results['duration_s']:.0f} s; writing {args.output}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    plot_path = args.output.with_name("benchmarks.png")
    summary = report.summarise(plan, results)
    report.plot(summary, results, plot_path)
    args.output.write_text(report.markdown(plan, summary, results, plot_path.name))
    if args.json is not None:
        args.json.write_text(
            json.dumps({"summary": summary, "results": results}, indent=1, default=str)
        )
    print(report.table(summary))


if __name__ == "__main__":
    main()
