"""A dataset at universe scale: a store of 5,000 codes built, read and exported.

    python bench/universe.py [--quick] [--codes N] [--rounds N] [--store FILE]

The store is built by `ShortInterestStore.sync` from the simulator without a quota (three US
codes to one HK, generated histories), then refreshed with nothing due. Then the reads a screen
or a notebook makes are timed, and the export, against the floor: reading the whole ``versions``
table once with pandas and writing it as Parquet. ``--store FILE`` keeps the built store there
and reuses it when it exists (the build takes a minute or two). `measure` returns the numbers and
`to_markdown` the section ``bench/run.py`` puts in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiomoomoo import Client, ShortInterestStore  # noqa: E402
from aiomoomoo.testing import OpenDSimulator, SymbolProfile  # noqa: E402

__all__ = ["measure", "to_markdown"]

CODES = 5000


def universe_codes(simulator: OpenDSimulator, size: int) -> list[str]:
    """``size`` generated codes added to ``simulator``, three US to one HK."""
    codes = []
    for index in range(size):
        code = f"HK.{10000 + index:05d}" if index % 4 == 3 else f"US.U{index:05d}"
        profile = SymbolProfile(
            price=5.0 + (index % 97) * 3,
            shares=2e8 + 1e7 * (index % 89),
            short_percent=0.5 + (index % 7) * 0.4,
            daily_volume=1e6 + 1e5 * (index % 83),
        )
        simulator.add_symbol(code, profile)
        codes.append(code)
    return codes


async def _build(path: Path, size: int) -> dict[str, Any]:
    async with OpenDSimulator(quota=None) as simulator:
        codes = universe_codes(simulator, size)
        async with Client(simulator.host, simulator.port, rate_limit=None) as client:
            with ShortInterestStore(path) as store:
                started = time.perf_counter()
                report = await store.sync(client, codes, today=simulator.as_of)
                seconds = time.perf_counter() - started
                if not report.ok:
                    raise RuntimeError(f"the build failed: {list(report.failures.items())[:3]}")
                started = time.perf_counter()
                idle = await store.sync(client, codes, today=simulator.as_of)
                idle_seconds = time.perf_counter() - started
                if idle.synced or idle.requests:
                    raise RuntimeError(f"a refresh with nothing due did something: {idle}")
    return {
        "codes": size,
        "requests": report.requests,
        "rows": report.rows_new,
        "seconds": seconds,
        "idle_sync_seconds": idle_seconds,
        "as_of": simulator.as_of.isoformat(),
    }


def build(path: Path, size: int) -> dict[str, Any]:
    """Sync ``size`` codes into a new store at ``path``; return what it took."""
    return asyncio.run(_build(path, size))


def _timed(function: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


# Runs a command's Python in this process and then writes its own peak resident size (VmHWM):
# the size the kernel reports to the parent would count the parent's pages the child was forked
# with, which are the bench's own (the built store's sync) and not the command's.
_PEAK = """
import runpy, sys
from pathlib import Path
report, kind, target = sys.argv[1:4]
sys.argv = [target if kind == "module" else "<floor>", *sys.argv[4:]]
try:
    if kind == "module":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        exec(compile(target, "<floor>", "exec"), {"__name__": "__main__"})
except SystemExit as exc:
    if exc.code:
        raise
finally:
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    Path(report).write_text(peak)
"""


def _run(kind: str, target: str, args: list[str]) -> tuple[float, int]:
    """Run ``target`` (a module, or Python source for ``kind="code"``) with ``args`` in a new
    process; return its wall time and its own peak resident memory (bytes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak"
        command = [sys.executable, "-c", _PEAK, str(report), kind, target, *args]
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        seconds = time.perf_counter() - started
        return seconds, int(report.read_text()) * 1024


_FLOOR = """
import contextlib, sqlite3, sys
import pandas as pd
with contextlib.closing(sqlite3.connect(sys.argv[1])) as db:
    frame = pd.read_sql_query("SELECT * FROM versions", db)
frame.to_parquet(sys.argv[2], index=False)
"""


def _processes(store: Path, rounds: int) -> dict[str, Any]:
    """The floor and the export of every row, each in a process of its own."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder)
        runs: dict[str, tuple[str, str, list[str]]] = {
            "floor": ("code", _FLOOR, [str(store), str(target / "floor.parquet")]),
            **{
                f"export {fmt}": (
                    "module",
                    "aiomoomoo",
                    ["export", "--store", str(store), "--format", fmt, "-o",
                     str(target / f"export.{fmt}")],
                )
                for fmt in ("parquet", "csv")
            },
        }  # fmt: skip
        for name, (kind, code, args) in runs.items():
            timed = [_run(kind, code, args) for _ in range(rounds)]
            out[name] = {"seconds": [s for s, _ in timed], "peak_bytes": max(m for _, m in timed)}
    return out


def _reads(store_path: Path, codes: list[str], as_of: dt.date, rounds: int) -> dict[str, Any]:
    with ShortInterestStore(store_path) as store:
        code = codes[len(codes) // 2]
        now = dt.datetime.now(dt.UTC)
        return {
            "latest('US')": _timed(lambda: store.latest("US"), rounds),
            "latest()": _timed(lambda: store.latest(), rounds),
            "summary()": _timed(store.summary, rounds),
            "history(code)": _timed(lambda: store.history(code), rounds * 5),
            "history(code, as_of=)": _timed(lambda: store.history(code, as_of=now), rounds * 5),
            "plan, nothing due": _timed(lambda: store.plan(codes, today=as_of), rounds),
        }


def _rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM versions").fetchone()
    return int(count)


@contextlib.contextmanager
def _store_at(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        yield keep
        return
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "universe.db"


def measure(quick: bool, *, store: Path | None = None, rounds: int | None = None) -> dict[str, Any]:
    """Build (or reuse, with ``store``) the universe store and time its reads and export."""
    size = 1000 if quick else CODES
    rounds = rounds or (2 if quick else 5)
    with _store_at(store) as path:
        cached = path.with_suffix(".build.json")
        if path.exists() and cached.exists():
            built = json.loads(cached.read_text())
        else:
            built = build(path, size)
            cached.write_text(json.dumps(built))
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = built["codes"]
        codes = [f"HK.{10000 + i:05d}" if i % 4 == 3 else f"US.U{i:05d}" for i in range(size)]
        rows = _rows(path)
        reads = _reads(path, codes, dt.date.fromisoformat(built["as_of"]), rounds)
        processes = _processes(path, rounds)
        return {
            "build": built,
            "rows": rows,
            "file_bytes": path.stat().st_size,
            "bytes_per_row": path.stat().st_size / rows,
            "rounds": rounds,
            "reads": reads,
            "processes": processes,
            # The machine's 5-minute load average as the last process ended: other work on it.
            "load": os.getloadavg()[1],
        }


def _spread(values: list[float], scale: float = 1.0, unit: str = "s") -> str:
    ordered = sorted(v * scale for v in values)
    middle = ordered[len(ordered) // 2]
    fmt = "{:.2f}" if unit == "s" else "{:.1f}"
    return f"{fmt.format(middle)} {unit} ({fmt.format(ordered[0])}-{fmt.format(ordered[-1])})"


def to_markdown(result: dict[str, Any], replay: str | None = None) -> str:
    """The benchmark's section of docs/benchmarks.md."""
    built = result["build"]
    processes = result["processes"]
    floor = sorted(processes["floor"]["seconds"])[len(processes["floor"]["seconds"]) // 2]
    lines = [
        "## A dataset at universe scale",
        "",
        f"{built['codes']:,} codes (three US to one HK) synced from the simulator without a "
        f"quota into a fresh store: {built['requests']:,} requests, {built['rows']:,} rows in "
        f"{built['seconds']:.1f} s; the file is {result['file_bytes'] / 2**20:.0f} MiB, "
        f"{result['bytes_per_row']:.0f} bytes a row. A refresh of all of them with nothing due "
        f"took {built['idle_sync_seconds'] * 1000:.0f} ms (no request sent). Times are the median "
        f"of {result['rounds']} rounds, the range in brackets; the machine's load average was "
        f"{result.get('load', float('nan')):.1f} (on 2 cores), so single rounds vary.",
        "",
        (replay or "### The calendar replay\n\nMeasured by `bench/calendar_replay.py`.").rstrip(
            "\n"
        ),
        "",
        "### Reads",
        "",
        "| read | time |",
        "|---|---:|",
    ]
    for name, times in result["reads"].items():
        lines.append(f"| `{name}` | {_spread(times, 1000, 'ms')} |")
    lines += [
        "",
        "### Export of every row",
        "",
        "The floor reads the whole `versions` table once with pandas "
        "(`read_sql_query('SELECT * FROM versions')`) and writes it as Parquet; "
        "`aiomoomoo export` writes every row with the store's columns. Each runs in a "
        "process of its own; peak memory is that process's largest resident size.",
        "",
        "| run | wall time | against the floor | peak memory |",
        "|---|---:|---:|---:|",
    ]
    for name, run in processes.items():
        middle = sorted(run["seconds"])[len(run["seconds"]) // 2]
        lines.append(
            f"| {name} | {_spread(run['seconds'])} | {middle / floor:.2f}x "
            f"| {run['peak_bytes'] / 2**20:.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def splice(page: str, section: str) -> str:
    """``page`` (docs/benchmarks.md) with ``section`` in place of its universe section, or
    before its Method section when it has none."""
    title = section.splitlines()[0]
    start = page.find(title + "\n")
    if start < 0:
        start = end = page.index("## Method")
    else:
        end = page.index("\n## ", start + len(title)) + 1
    return page[:start] + section + "\n" + page[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 codes, 2 rounds")
    parser.add_argument("--store", type=Path, help="build the store here, or reuse it")
    parser.add_argument("--rounds", type=int, help="rounds of each read (default 5)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--docs", action="store_true", help="replace this section of docs/benchmarks.md alone"
    )
    args = parser.parse_args()
    result = measure(args.quick, store=args.store, rounds=args.rounds)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    section = to_markdown(result)
    if args.docs:
        page = ROOT / "docs" / "benchmarks.md"
        page.write_text(splice(page.read_text(), section))
    print(section)


if __name__ == "__main__":
    main()
