"""aiomoomoo against the official moomoo client, side by side in one run.

    python bench/run.py [--quick] [--output PATH] [--json results.json]

The full run writes docs/benchmarks.md and docs/benchmarks.png; ``--quick`` (fewer rounds and
pages, a smoke test of the harness) writes bench/out/ instead, so it never replaces the page.
Every measurement is repeated for several rounds, the clients taking turns in an order that
rotates each round; the page gives the median and the range of every figure.
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

import measure  # noqa: E402


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
    import_rounds: int
    job_codes: tuple[str, ...]
    job_max: int
    job_period: float
    job_rounds: int


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
    import_rounds=3,
    # The simulator's whole built-in universe: 6 US codes of 4 pages, 5 HK codes of 8.
    job_codes=(
        "US.AAPL",
        "US.TSLA",
        "US.NVDA",
        "US.SPY",
        "US.BRK.B",
        "US.MSFT",
        "HK.00700",
        "HK.09988",
        "HK.00005",
        "HK.02800",
        "HK.03690",
    ),
    job_max=10,
    job_period=1.0,
    job_rounds=3,
)
# The same measurements on fewer rounds, pages and codes: a smoke test of the harness.
QUICK = dataclasses.replace(
    FULL,
    rounds=2,
    official_pages=400,
    ours_pages=800,
    concurrent_pages=1000,
    micro_pages=300,
    walk_rounds=1,
    import_rounds=1,
    job_codes=("US.AAPL", "US.TSLA", "HK.00700"),
    job_rounds=1,
)


def dataset_sync(quick: bool, results: dict[str, Any]) -> Any:
    """The dataset-sync benchmark (bench/sync.py), when this checkout has it; else None."""
    try:
        import sync
    except ImportError as exc:
        measure.log(f"no dataset-sync benchmark here ({exc}); its section is left out")
        return None
    measure.log("dataset sync")
    results["sync"] = sync.measure(quick)
    return sync


def screens_section(quick: bool, results: dict[str, Any]) -> Any:
    """Screens and changes on a 5,000-code store (bench/screens.py)."""
    import screens

    measure.log("screens and changes on a large store")
    results["screens"] = screens.measure(quick)
    return screens


def calendar_replay(quick: bool, results: dict[str, Any]) -> Any:
    """The calendar replay of weekday refreshes (bench/calendar_replay.py)."""
    import calendar_replay

    measure.log("calendar replay of weekday refreshes")
    results["calendar"] = calendar_replay.measure(quick)
    return calendar_replay


def dataset_universe(quick: bool, results: dict[str, Any]) -> Any:
    """The universe-scale benchmark (bench/universe.py): a 5,000-code store built, read and
    exported (1,000 codes with ``--quick``)."""
    import universe

    measure.log("dataset at universe scale")
    results["universe"] = universe.measure(quick)
    return universe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and pages (~2 min)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown page, the plot goes next to it as benchmarks.png (default: "
        "docs/benchmarks.md, or bench/out/benchmarks.md with --quick)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    output = args.output or (
        BENCH / "out" / "benchmarks.md" if args.quick else ROOT / "docs" / "benchmarks.md"
    )

    # Imported here so that the spawned workers, which import this module, stay light.
    import figure
    import machine
    import summary
    import writeup

    started = time.perf_counter()
    results: dict[str, Any] = {"plan": dataclasses.asdict(plan), "machine": machine.describe()}
    measure.job_rounds(plan, results)
    measure.cpu_rounds(plan, results)
    measure.walk_rounds(plan, results)
    measure.history_rounds(plan, results)
    measure.import_baseline(plan, results)
    sync = dataset_sync(args.quick, results)
    screens = screens_section(args.quick, results)
    replay = calendar_replay(args.quick, results)
    universe = dataset_universe(args.quick, results)
    results["duration_s"] = time.perf_counter() - started
    measure.log(f"measured in {results['duration_s']:.0f} s; writing {output}")

    output.parent.mkdir(parents=True, exist_ok=True)
    plot_path = output.with_name("benchmarks.png")
    digest = summary.summarise(plan, results)
    figure.plot(digest, results, plot_path)
    sections = [sync.to_markdown(results["sync"])] if sync is not None else []
    # The calendar replay is a part of the universe-scale section.
    replayed = replay.to_markdown(results["calendar"])
    sections.append(universe.to_markdown(results["universe"], replay=replayed))
    sections.append(screens.to_markdown(results["screens"]))
    extra = "\n".join(sections)
    output.write_text(
        writeup.page(plan, digest, results, plot_path.name, quick=args.quick, extra=extra)
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"summary": digest, "results": results}, indent=1, default=str)
        )
    print(writeup.headline(digest))


if __name__ == "__main__":
    main()
