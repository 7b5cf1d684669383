"""The dataset commands: ``sync`` keeps a store current, ``export`` writes it, ``plot`` draws it.

`STORE_SUBCOMMANDS` holds the functions that add their parsers, for `aiomoomoo._cli` to
register (``export`` and ``plot`` live in `aiomoomoo._cli_export`). The progress bar (``rich``,
extra ``cli``) and the chart (``matplotlib``, extra ``plot``) are imported only when used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._client import Client
from .._errors import MoomooError
from .._security import parse_code
from ..store import ShortInterestStore, SyncReport
from ..testing import OpenDSimulator, Quota
from . import _args as _cli_args
from ._export import SubParsers, add_export_parser, add_plot_parser
from ._output import print_error

if TYPE_CHECKING:
    from ..store import SyncProgress

__all__ = ["STORE_SUBCOMMANDS", "read_universe"]


# Pages a never-synced code is guessed to take when the store has no complete code of its
# market to learn from: about eight years of history, 50 rows a page.
def read_universe(path: Path) -> list[str]:
    """The codes in ``path``: one per line, or a CSV file's ``code`` column.

    Blank lines and lines starting with ``#`` are skipped. A line that is not a code, or a code
    listed twice, raises ``ValueError`` naming the file and line, so nothing is sent.
    """
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    fields = [name.strip().lower() for name in next(csv.reader([header]), [])]
    column = fields.index("code") if "code" in fields and "," in header else None
    codes: dict[str, int] = {}
    seen_header = False
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if column is not None:
            if not seen_header:
                seen_header = True
                continue
            cells = next(csv.reader([line]), [])
            value = cells[column].strip() if column < len(cells) else ""
        else:
            value = line.strip()
        try:
            code = parse_code(value).code
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {value!r} is not a code: {exc}") from None
        if code in codes:
            raise ValueError(
                f"{path}:{number}: {code} is listed twice (first on line {codes[code]})"
            )
        codes[code] = number
    return list(codes)


# -- sync -------------------------------------------------------------------------------------


def _add_sync_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="bring a local short-interest store up to date",
        description=(
            "Fetch what is new for each code into a SQLite store: whole histories for codes never "
            "seen, the newest pages for the others, nothing for codes whose next publication "
            "cannot have happened yet. A killed sync loses nothing; the next one continues."
        ),
    )
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", type=_cli_args.code, help="e.g. US.AAPL"
    )
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument("--universe", type=Path, metavar="FILE", help="codes, one per line or CSV")
    parser.add_argument("--host", default="127.0.0.1", help="OpenD's address (default %(default)s)")
    parser.add_argument(
        "--port", type=_cli_args.port, default=11111, help="OpenD's port (default 11111)"
    )
    parser.add_argument("--demo", action="store_true", help="sync from the built-in simulator")
    parser.add_argument(
        "--rate-limit",
        type=_cli_args.rate_limit,
        default=(30, 30.0),
        metavar="N/SECONDS",
        help="requests allowed in any SECONDS (default 30/30, OpenD's)",
    )
    parser.add_argument("--full", action="store_true", help="re-read every page of every code")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the requests expected and the least time"
    )
    parser.set_defaults(run=_run_sync)


def _run_sync(args: argparse.Namespace) -> int:
    codes = list(args.codes)
    if args.universe is not None:
        try:
            codes += read_universe(args.universe)
        except OSError as exc:
            print_error("sync", f"cannot read {args.universe}: {exc.strerror or exc}")
            return 2
        except ValueError as exc:
            print_error("sync", str(exc))
            return 2
    codes = list(dict.fromkeys(codes))
    if not codes:
        print_error("sync", "no codes: give CODE arguments or --universe FILE")
        return 2
    try:
        store = ShortInterestStore(args.store)
    except Exception as exc:  # sqlite3 errors, a directory in the way, ...
        print_error("sync", f"cannot open the store {args.store}: {exc}")
        return 1
    with store:
        if args.dry_run:
            return _dry_run(store, codes, args)
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
        with _progress_bar(store.plan(codes, full=args.full).requests) as on_progress:
            try:
                report = asyncio.run(_sync(store, codes, args, on_progress))
            except MoomooError as exc:
                print_error("sync", str(exc))
                return 1
            except KeyboardInterrupt:
                return 130
    print(_summary(report))
    for code, error in report.failures.items():
        print_error("sync", f"{code}: {error}")
    return 0 if report.ok else 1


async def _sync(
    store: ShortInterestStore,
    codes: list[str],
    args: argparse.Namespace,
    on_progress: Callable[[SyncProgress], None] | None,
) -> SyncReport:
    async with contextlib.AsyncExitStack() as stack:
        host, port = args.host, args.port
        if args.demo:
            limit = Quota(*args.rate_limit)
            simulator = await stack.enter_async_context(OpenDSimulator(port=0, quota=limit))
            host, port = simulator.host, simulator.port
        client = await stack.enter_async_context(Client(host, port, rate_limit=args.rate_limit))
        return await store.sync(client, codes, full=args.full, on_progress=on_progress)
    raise AssertionError("unreachable")  # pragma: no cover


def _dry_run(store: ShortInterestStore, codes: list[str], args: argparse.Namespace) -> int:
    plan = store.plan(codes, full=args.full)
    expected, unknown = plan.requests, plan.unknown
    count, period = args.rate_limit
    least = period * (math.ceil(expected / count) - 1) if expected else 0.0
    due = len(plan.due)
    print(f"codes: {len(codes)}, due: {due}, not due: {len(codes) - due}")
    guess = (
        f" ({unknown} never synced, guessed from the store or typical lengths)" if unknown else ""
    )
    print(f"requests expected: {expected}{guess}")
    print(f"least wall time at {count}/{period:g}s: {_duration(least)}")
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _summary(report: SyncReport) -> str:
    return (
        f"requests sent: {report.requests}; codes synced: {len(report.synced)}, skipped as not "
        f"due: {len(report.skipped)}, failed: {len(report.failures)}; rows new: "
        f"{report.rows_new}, revised: {report.rows_revised}; {_duration(report.elapsed)}"
    )


@contextlib.contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[SyncProgress], None] | None]:
    """A rich progress bar on a terminal's stderr; None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        print("(pip install 'aiomoomoo[cli]' for a progress bar)", file=sys.stderr)
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests, {task.fields[rows]} rows, quota wait {task.fields[wait]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("sync", total=max(total, 1), rows=0, wait="0s")

        def update(progress: SyncProgress) -> None:
            # The total is an estimate: stretch it when there is more to do than guessed.
            left = progress.codes_total - progress.codes_done
            bar.update(
                task,
                completed=progress.requests,
                total=max(total, progress.requests + left),
                description=f"{progress.codes_done}/{progress.codes_total} codes",
                rows=progress.rows_new + progress.rows_revised,
                wait=f"{progress.quota_wait:.0f}s",
            )

        yield update


STORE_SUBCOMMANDS: Final[tuple[Callable[[SubParsers], Any], ...]] = (
    _add_sync_parser,
    add_export_parser,
    add_plot_parser,
)
