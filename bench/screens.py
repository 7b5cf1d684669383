"""Questions across codes on a 5,000-code store: screen and changes against reading latest().

    python bench/screens.py [--quick]

A store of 5,000 codes (3,750 US, 1,250 HK; 500 with ``--quick``) of 48 rows each is written
straight through the store's writer, with no network. Then each read runs a few rounds, the
median kept: `ShortInterestStore.latest` (the frame a screen in pandas would start from), a
screen with conditions sorted and cut to 50 rows, a screen of everything, `changes` for both
markets, and `to_arrow`. `measure` returns the numbers and `to_markdown` the section
``bench/run.py`` puts in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiomoomoo import ShortInterestStore  # noqa: E402
from aiomoomoo._security import parse_code  # noqa: E402
from aiomoomoo.store._write import StoreWriter  # noqa: E402

__all__ = ["measure", "to_markdown"]

ROWS = 48
ROUNDS = 5


def _dates() -> list[str]:
    """Twice-monthly dates, newest first: US settlement dates are about that often."""
    return [f"{2026 - m // 24}-{12 - (m // 2) % 12:02d}-{15 if m % 2 else 28}" for m in range(ROWS)]


def _fill(path: Path, codes: int) -> None:
    rnd = random.Random(7)
    dates = _dates()
    ShortInterestStore(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        writer = StoreWriter(db)
        for index in range(codes):
            if index % 4 == 3:
                code = f"HK.{index:05d}"
                rows: list[tuple[Any, ...]] = [
                    (1_700_000_000, d, rnd.randrange(10**6, 10**8), rnd.random(), 40.0, 39.5)
                    for d in dates
                ]
            else:
                code = f"US.S{index:05d}"
                rows = [
                    (
                        1_700_000_000,
                        d,
                        rnd.randrange(10**5, 10**8),
                        rnd.random() * 30,
                        rnd.randrange(10**5, 10**7),
                        rnd.random() * 10,
                        20.0,
                        19.5,
                    )
                    for d in dates
                ]
            writer.store_page(parse_code(code), None, rows, "-1")


def _median_ms(read: Callable[[], object]) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = read()
        times.append((time.perf_counter() - started) * 1000)
        size = len(result)  # type: ignore[arg-type]
    return statistics.median(times), size


def measure(quick: bool) -> dict[str, Any]:
    """Build the store and time each read; the numbers by read."""
    codes = 500 if quick else 5000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        _fill(path, codes)
        built = time.perf_counter() - started
        with ShortInterestStore(path) as store:
            reads: dict[str, Callable[[], object]] = {
                "latest()": store.latest,
                "screen(): every code, no condition": store.screen,
                'screen("US", min_days_to_cover=5, min_change_percent=10, by="change_percent", '
                "top=50)": lambda: store.screen(
                    "US", min_days_to_cover=5, min_change_percent=10, by="change_percent", top=50
                ),
                'changes("US") + changes("HK")': lambda: [
                    *store.changes("US").itertuples(),
                    *store.changes("HK").itertuples(),
                ],
                "to_arrow(): every row": store.to_arrow,
            }
            timings = {name: _median_ms(read) for name, read in reads.items()}
    return {
        "codes": codes,
        "rows": codes * ROWS,
        "build_seconds": built,
        "reads": {name: {"ms": ms, "rows": size} for name, (ms, size) in timings.items()},
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark's section of docs/benchmarks.md."""
    lines = [
        "## Screens and changes across codes",
        "",
        f"A store of {result['codes']:,} codes (three US to one HK) of {ROWS} rows each "
        f"({result['rows']:,} rows), written through the store's writer; each read is the median "
        f"of {ROUNDS} rounds. `latest()` is what a screen in pandas starts from; `screen` and "
        "`changes` rank and filter inside SQLite.",
        "",
        "| read | rows returned | median time |",
        "|---|---:|---:|",
    ]
    for name, read in result["reads"].items():
        lines.append(f"| `{name}` | {read['rows']:,} | {read['ms']:.0f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 codes instead of 5,000")
    args = parser.parse_args()
    print(to_markdown(measure(args.quick)))


if __name__ == "__main__":
    main()
