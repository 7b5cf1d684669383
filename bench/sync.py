"""Keeping a dataset current: a store synced from the simulator under a short strict quota.

    python bench/sync.py [--quick]

A universe of US and HK symbols (40, or 20 with ``--quick``) is synced into a fresh store under a
strict window of 30 requests per 3 seconds, enforced by the simulator and kept by the client;
the simulator publishes on the real lags (US 7 business days after each settlement date, HK 5).
Then its clock moves 16 days (one US publication, three HK ones) and the store is refreshed;
then it is refreshed again with nothing due. Each step reports the requests sent
against the fewest that could fetch everything (every page once for the full sync, one page per
code with new rows for the refresh) and the wall time against the least the quota allows,
``period * (ceil(requests / max_requests) - 1)``. `measure` returns the numbers and
`to_markdown` the section ``bench/run.py`` puts in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiomoomoo import Client, ShortInterestStore  # noqa: E402
from aiomoomoo.testing import (  # noqa: E402
    PUBLICATION_LAGS,
    OpenDSimulator,
    Quota,
    SymbolProfile,
)

__all__ = ["measure", "to_markdown"]

MAX_REQUESTS = 30
PERIOD = 3.0
PAGE = 50


def _universe(simulator: OpenDSimulator, size: int) -> list[str]:
    """``size`` codes, three US to one HK: the built-in ones, then generated ones."""
    us = [c for c in simulator.codes if c.startswith("US.")]
    hk = [c for c in simulator.codes if c.startswith("HK.")]
    want_hk = size // 4
    for index in range(size):
        market = "HK" if index < want_hk else "US"
        pool = hk if market == "HK" else us
        if sum(c.startswith(market) for c in pool) < (
            want_hk if market == "HK" else size - want_hk
        ):
            code = f"HK.{10000 + index:05d}" if market == "HK" else f"US.SYM{index:02d}"
            profile = SymbolProfile(
                price=20.0 + 7 * index,
                shares=1e9 + 3e7 * index,
                short_percent=0.5 + (index % 7) * 0.4,
                daily_volume=5e6 + 1e6 * index,
            )
            simulator.add_symbol(code, profile)
            pool.append(code)
    return us[: size - want_hk] + hk[:want_hk]


def _least(requests: int) -> float:
    return PERIOD * (math.ceil(requests / MAX_REQUESTS) - 1) if requests else 0.0


async def _step(
    store: ShortInterestStore, client: Client, codes: list[str], simulator: OpenDSimulator
) -> dict[str, Any]:
    refused = simulator.stats.rate_limited
    started = time.perf_counter()
    report = await store.sync(client, codes, today=simulator.as_of)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the benchmark sync failed: {report.failures}")
    return {
        "requests": report.requests,
        "rows_new": report.rows_new,
        "skipped": len(report.skipped),
        "seconds": elapsed,
        "least_seconds": _least(report.requests),
        "refused_by_server": simulator.stats.rate_limited - refused,
    }


async def _measure(size: int) -> dict[str, Any]:
    quota = Quota(MAX_REQUESTS, PERIOD)
    async with OpenDSimulator(quota=quota, publication_lag=PUBLICATION_LAGS) as simulator:
        codes = _universe(simulator, size)
        full_minimum = sum(max(1, math.ceil(len(simulator.history(c)) / PAGE)) for c in codes)
        rate = (MAX_REQUESTS, PERIOD)
        async with Client(simulator.host, simulator.port, rate_limit=rate) as client:
            with (
                tempfile.TemporaryDirectory() as folder,
                ShortInterestStore(Path(folder) / "bench.db") as store,
            ):
                full = await _step(store, client, codes, simulator)
                full["minimum"] = full_minimum
                published = simulator.advance(16)
                # A fresh window, so the refresh is timed on its own.
                await asyncio.sleep(PERIOD)
                refresh = await _step(store, client, codes, simulator)
                refresh["minimum"] = sum(
                    max(1, math.ceil(published[c] / PAGE)) for c in codes if published[c]
                )
                await asyncio.sleep(PERIOD)
                idle = await _step(store, client, codes, simulator)
                idle["minimum"] = 0
    return {
        "symbols": len(codes),
        "us": sum(c.startswith("US.") for c in codes),
        "hk": sum(c.startswith("HK.") for c in codes),
        "quota": f"{MAX_REQUESTS}/{PERIOD:g}s",
        "steps": {
            "full sync": full,
            "refresh after 16 days": refresh,
            "refresh, nothing due": idle,
        },
    }


def measure(quick: bool) -> dict[str, Any]:
    """Run the benchmark (20 symbols when ``quick``, else 40) and return its numbers."""
    return asyncio.run(_measure(20 if quick else 40))


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark's section of docs/benchmarks.md."""
    lines = [
        "## Keeping a dataset current (`ShortInterestStore.sync`)",
        "",
        f"{result['symbols']} symbols ({result['us']} US, {result['hk']} HK) synced into a fresh "
        f"store under a strict window of {result['quota']} (the simulator refuses anything over "
        "it, and publishes on the real lags), then refreshed after the simulator's clock moves "
        "16 days, then refreshed again with nothing due. *Least time* is what the quota "
        "allows for those requests, `period * (ceil(requests / max_requests) - 1)`.",
        "",
        "| step | requests | fewest possible | rows new | codes skipped | wall time | least time "
        "| refused by the server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, step in result["steps"].items():
        lines.append(
            f"| {name} | {step['requests']} | {step['minimum']} | {step['rows_new']} "
            f"| {step['skipped']} | {step['seconds']:.2f} s | {step['least_seconds']:.2f} s "
            f"| {step['refused_by_server']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 symbols instead of 40")
    args = parser.parse_args()
    print(to_markdown(measure(args.quick)))


if __name__ == "__main__":
    main()
