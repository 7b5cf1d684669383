"""A refresh on a calendar: weekday syncs over months of simulated time, on the real schedule.

    python bench/calendar_replay.py [--quick] [--json FILE]

A universe of US and HK codes (240, or 40 with ``--quick``) is served by the simulator with the
real publication lags (US 7 business days after each settlement date, HK 5). Every weekday from
2026-02-02 to 2026-11-30 (to 2026-04-30 with ``--quick``) the simulator's clock moves to that
day and two stores are refreshed with ``today`` set to it: one by the sync's schedule (frontier,
catch-up and probes), one by the settlement-date rule of earlier releases (`next_due`). No quota
and no waiting: simulated days pass as fast as the syncs run.

Each run's requests are set against the minimum: one request per code with newly published
rows (more only where a code gained over 50 rows: its pages), every page of every history on
the first run. After every run each store must hold exactly what the simulator has published
(each code's row count and newest date), or the benchmark fails. `measure` returns the numbers
and `to_markdown` the section ``bench/run.py`` puts in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiomoomoo import Client, Market, ShortInterestStore  # noqa: E402
from aiomoomoo.store._plan import PROBES, CodeState, is_due  # noqa: E402
from aiomoomoo.testing import PUBLICATION_LAGS, OpenDSimulator, SymbolProfile  # noqa: E402

__all__ = ["measure", "replay", "to_markdown"]

PAGE = 50
START = dt.date(2026, 2, 2)
END = dt.date(2026, 11, 30)
QUICK_END = dt.date(2026, 4, 30)


def universe(simulator: OpenDSimulator, us: int, hk: int) -> list[str]:
    """``us`` US and ``hk`` HK codes with generated histories, added to ``simulator``."""
    codes = [f"US.S{i:04d}" for i in range(us)] + [f"HK.{10000 + i:05d}" for i in range(hk)]
    for index, code in enumerate(codes):
        simulator.add_symbol(
            code,
            SymbolProfile(
                price=5.0 + (index * 37) % 400,
                shares=5e8 + 1e7 * (index % 97),
                short_percent=0.3 + (index % 11) * 0.5,
                daily_volume=1e6 + 2e5 * (index % 53),
            ),
        )
    return codes


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every Monday to Friday from ``start`` to ``end``."""
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    return [day for day in days if day.weekday() < 5]


def published(simulator: OpenDSimulator, codes: list[str]) -> dict[str, tuple[int, str | None]]:
    """Each code's published rows: (how many, the newest date)."""
    result = {}
    for code in codes:
        rows = simulator.history(code)
        result[code] = (len(rows), str(rows[0].timestamp_str) if rows else None)
    return result


def stored(store: ShortInterestStore) -> dict[str, tuple[int, str | None]]:
    """Each code's stored rows: (how many, the newest date)."""
    summary = store.summary()
    return {
        str(code): (int(rows), None if newest is None else str(newest))
        for code, rows, newest in zip(
            summary["code"], summary["rows"], summary["newest"], strict=True
        )
    }


def settlement_rule_due(store: ShortInterestStore, codes: list[str], day: dt.date) -> list[str]:
    """The codes the settlement-date rule of earlier releases asked on ``day``."""
    summary = store.summary().set_index("code")
    due = []
    for code in codes:
        market = Market[code[:2]]
        state = None
        if code in summary.index:
            row = summary.loc[code]
            newest = row["newest"]
            state = CodeState(
                market=market,
                rows=int(row["rows"]),
                newest=None if newest is None else dt.date.fromisoformat(str(newest)),
                complete=bool(row["complete"]),
                failed=row["last_error"] is not None,
            )
        if is_due(state, market, day):
            due.append(code)
    return due


async def replay(
    us: int, hk: int, end: dt.date, folder: Path, *, old_rule: bool = True
) -> dict[str, Any]:
    """Replay weekday syncs from `START` to ``end`` over ``us`` + ``hk`` codes; return each
    run's requests by rule and its minimum. Raises AssertionError when a store differs from
    what the simulator has published after a run."""
    days = weekdays(START, end)
    simulator = OpenDSimulator(
        quota=None, publication_lag=PUBLICATION_LAGS, as_of=days[0] - dt.timedelta(days=1)
    )
    runs: list[dict[str, Any]] = []
    async with simulator:
        codes = universe(simulator, us, hk)
        async with Client(simulator.host, simulator.port, rate_limit=None) as client:
            schedule = ShortInterestStore(folder / "schedule.db")
            settlement = ShortInterestStore(folder / "settlement.db")
            with schedule, settlement:
                gained = {code: len(simulator.history(code)) for code in codes}
                for day in days:
                    fresh = simulator.advance((day - simulator.as_of).days)
                    for code in codes:
                        gained[code] += fresh[code]
                    minimum = sum(math.ceil(n / PAGE) for c, n in gained.items() if n)
                    by_market = {
                        m.name: sum(1 for c, n in gained.items() if n and c[:2] == m.name)
                        for m in Market
                    }
                    gained = dict.fromkeys(codes, 0)
                    report = await schedule.sync(client, codes, today=day)
                    run: dict[str, Any] = {
                        "day": day.isoformat(),
                        "minimum": minimum,
                        "published": by_market,
                        "schedule": report.requests,
                        "probes": {m.name: len(s.probes) for m, s in report.markets.items()},
                        "found": {m.name: s.found for m, s in report.markets.items()},
                    }
                    truth = published(simulator, codes)
                    if not report.ok or stored(schedule) != truth:
                        raise AssertionError(f"{day}: the schedule's store differs")
                    if old_rule:
                        due = settlement_rule_due(settlement, codes, day)
                        old = await settlement.sync(client, due, every=True, today=day)
                        if not old.ok or stored(settlement) != truth:
                            raise AssertionError(f"{day}: the settlement rule's store differs")
                        run["settlement"] = old.requests
                        run["settlement_found"] = old.rows_new > 0
                    runs.append(run)
    return {
        "codes": len(codes),
        "us": us,
        "hk": hk,
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "runs": runs,
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Totals over the runs after the first (the first backfills every history, by both rules
    at the minimum), and how far the schedule stays from the minimum."""
    runs = result["runs"]
    later = runs[1:]
    allowed = PROBES * len(Market)
    return {
        "runs": len(runs),
        "first": {"minimum": runs[0]["minimum"], "schedule": runs[0]["schedule"]},
        "minimum": sum(r["minimum"] for r in later),
        "schedule": sum(r["schedule"] for r in later),
        "settlement": sum(r.get("settlement", 0) for r in later),
        "settlement_runs_asking": sum(1 for r in later if r.get("settlement", 0)),
        "settlement_runs_finding": sum(1 for r in later if r.get("settlement_found")),
        "runs_with_publication": sum(1 for r in later if r["minimum"]),
        "schedule_runs_asking": sum(1 for r in later if r["schedule"]),
        "worst_excess": max(r["schedule"] - r["minimum"] for r in runs),
        "within_target": all(r["schedule"] <= r["minimum"] + allowed for r in runs),
        "probes": sum(sum(r["probes"].values()) for r in later),
    }


def measure(quick: bool) -> dict[str, Any]:
    """Run the replay (240 codes to 2026-11-30, or 40 to 2026-04-30 when ``quick``)."""
    us, hk, end = (30, 10, QUICK_END) if quick else (160, 80, END)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(replay(us, hk, end, Path(folder)))
    result["seconds"] = time.perf_counter() - started
    result["summary"] = summarise(result)
    return result


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark's section of docs/benchmarks.md."""
    s = result["summary"]
    refreshes = s["runs"] - 1
    lines = [
        "### The calendar replay",
        "",
        f"{result['codes']} codes ({result['us']} US, {result['hk']} HK) served by the simulator "
        "with the real publication lags (US 7 business days after each settlement date, HK 5), "
        f"synced on every weekday from {result['start']} to {result['end']} ({s['runs']} runs) "
        "with `today` set to the simulated day. After every run both stores held exactly the "
        "rows the simulator had published. The *minimum* is one request per code with newly "
        "published rows (a page per 50 rows); the first run, a backfill of every history, took "
        f"{s['first']['schedule']:,} requests against a minimum of {s['first']['minimum']:,} "
        f"and is left out below. `bench/calendar_replay.py` measures it in "
        f"{result['seconds']:.0f} s.",
        "",
        f"| rule ({refreshes} refreshes) | requests | runs that sent any | over the minimum |",
        "|---|---:|---:|---:|",
        f"| minimum | {s['minimum']:,} | {s['runs_with_publication']} | 0 |",
        f"| schedule: frontier, catch-up, {PROBES} probes per market | {s['schedule']:,} "
        f"| {s['schedule_runs_asking']} | {s['schedule'] - s['minimum']:,} |",
        f"| settlement dates only (`next_due`, earlier releases) | {s['settlement']:,} "
        f"| {s['settlement_runs_asking']} | {s['settlement'] - s['minimum']:,} |",
        "",
        f"Of the settlement-date rule's {s['settlement_runs_asking']} runs that sent requests, "
        f"{s['settlement_runs_finding']} found new rows. The schedule's probes cost "
        f"{s['probes']:,} requests in all; no run went over its minimum by more than "
        f"{s['worst_excess']} (the target allows {PROBES} probes per market, "
        f"{PROBES * len(Market)}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 codes to 2026-04-30")
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    args = parser.parse_args()
    result = measure(args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
