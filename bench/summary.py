"""Raw rounds into figures: the median and range of every measurement, ratios round by round,
and the verdict on each target.

A figure is a `spread`: ``{"median", "min", "max", "n"}`` over the rounds. A ratio between two
clients is taken within each round (they were measured in the same round, a few seconds apart)
and then spread, so a ratio's range shows how far a single round could have misled.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

__all__ = ["callers", "spread", "summarise"]


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median, least and largest of ``values``, and how many there were."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("no rounds to summarise")
    return {
        "median": statistics.median(data),
        "min": min(data),
        "max": max(data),
        "n": len(data),
    }


def callers(tasks: int) -> dict[str, str]:
    """Each measured caller's series name and its label."""
    return {
        "official_1": "official, 1 thread",
        f"official_{tasks}": f"official, {tasks} threads",
        "asyncio_1": "aiomoomoo asyncio, 1 task",
        f"asyncio_{tasks}": f"aiomoomoo asyncio, {tasks} tasks",
        "uvloop_1": "aiomoomoo uvloop, 1 task",
        f"uvloop_{tasks}": f"aiomoomoo uvloop, {tasks} tasks",
    }


def _per_round(
    top: list[dict[str, Any]], bottom: list[dict[str, Any]], key: str
) -> dict[str, float]:
    return spread(a[key] / b[key] for a, b in zip(top, bottom, strict=True))


def _cpu(plan: Any, results: dict[str, Any]) -> dict[str, Any]:
    cpu, n = results["cpu"], plan.tasks
    clients = {
        name: {
            metric: spread(run[metric] for run in cpu[name])
            for metric in ("pages_per_s", "cpu_us_per_page", "p50_us", "p99_us")
            if metric in cpu[name][0]
        }
        for name in callers(n)
    }
    ratios: dict[str, dict[str, float]] = {}
    for loop in ("asyncio", "uvloop"):
        for width in (1, n):
            official, ours = cpu[f"official_{width}"], cpu[f"{loop}_{width}"]
            ratios[f"cpu_{loop}_{width}"] = _per_round(official, ours, "cpu_us_per_page")
            ratios[f"throughput_{loop}_{width}"] = _per_round(ours, official, "pages_per_s")
    ratios["micro"] = _per_round(cpu["micro_official"], cpu["micro_ours"], "cpu_us_per_page")
    # What threads buy the official client here, where it is bound by its own CPU.
    ratios["official_threads"] = _per_round(cpu[f"official_{n}"], cpu["official_1"], "pages_per_s")
    breakdown = {
        key: spread(run[key] for run in cpu["breakdown"])
        for key in ("decode_us", "frame_us", "fresh_us", "floor_us")
    }
    breakdown["first_access_us"] = spread(
        run["fresh_us"] - run["decode_us"] - run["frame_us"] for run in cpu["breakdown"]
    )
    return {
        "clients": clients,
        "ratios": ratios,
        "micro": {
            who: spread(run["cpu_us_per_page"] for run in cpu[f"micro_{who}"])
            for who in ("official", "ours")
        },
        "noframe": {
            width: {
                metric: spread(run[metric] for run in cpu[f"asyncio_{width}_noframe"])
                for metric in ("pages_per_s", "cpu_us_per_page")
            }
            for width in (1, n)
        },
        "breakdown": breakdown,
        "server_cpu_us_per_page": results["server_cpu_us_per_page"],
    }


def _memory(plan: Any, results: dict[str, Any]) -> dict[str, Any]:
    first, last = plan.walk_marks[0], plan.walk_marks[-1]
    walks, history = results["walks"], results["history"]
    mib = 1024
    return {
        "walk": {
            "first": first,
            "last": last,
            "before_mib": spread(w["rss_before_kib"] / mib for w in walks),
            "growth_first_mib": spread(
                (w["rss"][first]["peak_kib"] - w["rss_before_kib"]) / mib for w in walks
            ),
            "growth_last_mib": spread(
                (w["rss"][last]["peak_kib"] - w["rss_before_kib"]) / mib for w in walks
            ),
            "pages_per_s": spread(w["pages"] / w["wall"] for w in walks),
        },
        "history": {
            "rows": history[0]["rows"],
            "frame_mib": spread(h["frame_kib"] / mib for h in history),
            "growth_mib": spread((h["peak_kib"] - h["rss_before_kib"]) / mib for h in history),
            "ratio": spread(
                (h["peak_kib"] - h["rss_before_kib"]) / h["frame_kib"] for h in history
            ),
            "wall_s": spread(h["wall"] for h in history),
        },
        "imports": {
            name: spread(kib / mib for kib in values) for name, values in results["imports"].items()
        },
    }


def _job(results: dict[str, Any]) -> dict[str, Any]:
    job = results["job"]
    optimum, minimum = job["optimum_s"], job["minimum"]
    variants = {}
    for name, runs in job["runs"].items():
        variants[name] = {
            "wall_s": spread(run["wall"] for run in runs),
            "over_optimum_s": spread(run["wall"] - optimum for run in runs),
            "requests": spread(run["requests"] for run in runs),
            "extra_requests": spread(run["requests"] - minimum for run in runs),
            "refused": spread(run["rate_limited"] for run in runs),
        }
    return {**{k: v for k, v in job.items() if k != "runs"}, "variants": variants}


def _targets(plan: Any, digest: dict[str, Any]) -> list[dict[str, Any]]:
    n = plan.tasks
    ours = digest["job"]["variants"]["ours"]
    optimum = digest["job"]["optimum_s"]
    ratios = digest["cpu"]["ratios"]
    history = digest["memory"]["history"]
    worst_over = ours["over_optimum_s"]["max"]
    return [
        {
            "name": "Quota-bound job: requests",
            "target": "the minimum, every round",
            "value": f"{ours['requests']['max']:g} for a minimum of {digest['job']['minimum']}, "
            f"{ours['refused']['max']:g} refused",
            "met": ours["extra_requests"]["max"] == 0 and ours["refused"]["max"] == 0,
        },
        {
            "name": "Quota-bound job: wall time",
            "target": "≤ optimum + 2 %, every round",
            "value": f"optimum {optimum:g} s, worst round +{worst_over:.3f} s "
            f"({worst_over / optimum * 100:+.2f} %)"
            if optimum
            else f"worst round {ours['wall_s']['max']:.3f} s",
            "met": worst_over <= 0.02 * optimum,
        },
        {
            "name": "CPU per page, 1 task vs official on 1 thread",
            "target": "≤ 1/5, every round",
            "value": f"worst round 1/{ratios['cpu_asyncio_1']['min']:.2f}",
            "met": ratios["cpu_asyncio_1"]["min"] >= 5,
        },
        {
            "name": f"CPU per page, {n} tasks vs official on {n} threads",
            "target": "≤ 1/5, every round",
            "value": f"worst round 1/{ratios[f'cpu_asyncio_{n}']['min']:.2f}",
            "met": ratios[f"cpu_asyncio_{n}"]["min"] >= 5,
        },
        {
            "name": f"`fetch_short_interest` peak memory, {history['rows']:,} rows",
            "target": "≤ 2 \u00d7 the frame",
            "value": f"worst round {history['ratio']['max']:.2f} \u00d7",
            "met": history["ratio"]["max"] <= 2,
        },
    ]


def summarise(plan: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the page, as spreads over rounds, plus the targets."""
    digest: dict[str, Any] = {
        "tasks": plan.tasks,
        "rounds": plan.rounds,
        "job": _job(results),
        "cpu": _cpu(plan, results),
        "memory": _memory(plan, results),
    }
    digest["targets"] = _targets(plan, digest)
    return digest
