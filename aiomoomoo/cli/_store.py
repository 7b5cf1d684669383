"""The dataset commands: ``sync`` keeps a store current, ``export`` writes it, ``plot`` draws it.

The chart (``matplotlib``, extra ``plot``) is imported only by ``plot``; the universe file's
reading is `read_universe`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Final

import pandas as pd

from .._errors import MoomooError
from .._quota import SlidingWindowLimiter
from .._security import parse_code
from ..store import ShortInterestStore, SyncProgress, SyncReport
from . import _args
from ._gateway import GATEWAY_OPTIONS, connected_client, explain
from ._output import INTERRUPTED, escape, in_column_order, print_error
from ._progress import ProgressDisplay, duration, progress_on, ticking
from ._tables import add_output_options, output_problem, write_table, write_tables
from ._universe import read_universe

__all__ = ["COMMANDS"]

SubParsers = argparse._SubParsersAction


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")


# -- sync -------------------------------------------------------------------------------------


def _add_sync_parser(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sync",
        parents=[GATEWAY_OPTIONS],
        help="bring a local short-interest store up to date",
        description=(
            "Fetch what is new for each code into a SQLite store: whole histories for codes never "
            "seen, the newest pages for the others, nothing for codes whose next publication "
            "cannot have happened yet. A killed sync loses nothing; the next one continues."
        ),
    )
    parser.add_argument("codes", nargs="*", metavar="CODE", type=_args.code, help="e.g. US.AAPL")
    _store_option(parser)
    parser.add_argument("--universe", type=Path, metavar="FILE", help="codes, one per line or CSV")
    parser.add_argument("--full", action="store_true", help="re-read every page of every code")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests expected and the least time; send and write nothing",
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
    if args.dry_run and not args.store.exists():
        # Planned against an empty store: a dry run creates no file.
        with (
            tempfile.TemporaryDirectory() as empty,
            ShortInterestStore(Path(empty) / "plan.db") as store,
        ):
            return _dry_run(store, codes, args)
    try:
        store = ShortInterestStore(args.store)
    except Exception as exc:  # sqlite3 errors, a directory in the way, ...
        print_error("sync", f"cannot open the store {args.store}: {exc}")
        return 1
    with store:
        if args.dry_run:
            return _dry_run(store, codes, args)
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
        expected = store.plan(codes, full=args.full).requests
        stored = _Stored()
        # The display is gone before any message, so that none is drawn over.
        try:
            with progress_on(sys.stderr, len(codes), expected=expected) as display:
                stored.display = display
                report = asyncio.run(_sync(store, codes, args, stored))
        except MoomooError as exc:
            print_error("sync", explain(exc, "sync", args))
            return 1
        except KeyboardInterrupt:
            print_error("sync", f"interrupted: {stored.rows:,} rows stored, run again to resume")
            return INTERRUPTED
    print(_summary(report))
    for code, error in report.failures.items():
        print_error("sync", f"{code}: {error}")
    return 0 if report.ok else 1


class _Stored:
    """The sync's progress callback: keeps the rows stored so far, for Ctrl-C to tell, and
    feeds the display, if any."""

    def __init__(self) -> None:
        self.rows = 0
        self.display: ProgressDisplay | None = None

    def __call__(self, progress: SyncProgress) -> None:
        self.rows = progress.rows_new + progress.rows_revised
        if self.display is not None:
            self.display.synced(progress)


async def _sync(
    store: ShortInterestStore, codes: list[str], args: argparse.Namespace, stored: _Stored
) -> SyncReport:
    async with connected_client(args) as client:
        if stored.display is not None:
            stored.display.watch(client)
        with ticking(stored.display):
            return await store.sync(client, codes, full=args.full, on_progress=stored)


def _dry_run(store: ShortInterestStore, codes: list[str], args: argparse.Namespace) -> int:
    plan = store.plan(codes, full=args.full)
    count, period = args.rate_limit
    # The client's own quota model: when a fresh limiter could have granted them all.
    least = SlidingWindowLimiter(count, period).eta(plan.requests)
    print(f"codes: {len(codes)}, due: {len(plan.due)}, not due: {len(plan.skipped)}")
    guess = (
        f" ({plan.unknown} never synced, guessed from the store or typical lengths)"
        if plan.unknown
        else ""
    )
    print(f"requests expected: {plan.requests}{guess}")
    print(f"least wall time at {count}/{period:g}s: {duration(least)}")
    return 0


def _summary(report: SyncReport) -> str:
    return (
        f"requests sent: {report.requests}; codes synced: {len(report.synced)}, skipped as not "
        f"due: {len(report.skipped)}, failed: {len(report.failures)}; rows new: "
        f"{report.rows_new}, revised: {report.rows_revised}; {duration(report.elapsed)}"
    )


# -- export -----------------------------------------------------------------------------------


def _add_export_parser(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a store's rows as a table, CSV, JSON or Parquet",
        description="Write stored histories, or each code's newest row, with a code column.",
    )
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", type=_args.code, help="default: every code"
    )
    _store_option(parser)
    parser.add_argument("--since", type=_args.date, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--as-of", type=_args.as_of, metavar="TIME", help="as known then (e.g. 2026-05-01T00:00Z)"
    )
    parser.add_argument("--latest", action="store_true", help="only each code's newest row")
    add_output_options(parser)
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    problem = output_problem(args)
    if problem is not None:
        print_error("export", problem[0])
        return problem[1]
    if not args.store.exists():
        print_error("export", f"no store at {args.store}")
        return 2
    try:
        with ShortInterestStore(args.store) as store:
            codes = list(dict.fromkeys(args.codes)) or None
            try:
                if args.latest:
                    frame = _latest_frame(store, codes or store.codes(), args)
                    return write_table("export", frame, args)
                batches = store.history_batches(codes, since=args.since, as_of=args.as_of)
            except (KeyError, ValueError) as exc:
                print_error("export", str(exc.args[0] if exc.args else exc))
                return 2
            # Written as read, a batch at a time: memory holds one batch, not the store.
            # The code column as plain text, as a frame given a code column by assignment has it.
            frames = (in_column_order(b.assign(code=b["code"].astype(str))) for b in batches)
            return write_tables("export", frames, args)
    except KeyboardInterrupt:
        # A file takes its name only once complete; a pipe may have had some batches.
        written = "nothing written" if args.output is not None else "the output is incomplete"
        print_error("export", f"interrupted: {written}")
        return INTERRUPTED


def _latest_frame(
    store: ShortInterestStore, codes: list[str], args: argparse.Namespace
) -> pd.DataFrame:
    unknown = sorted(set(codes) - set(store.codes()))
    if unknown:
        raise KeyError(f"{unknown[0]} is not in the store {str(store.path)!r}")
    markets = {parse_code(code).market for code in codes}
    frame = store.latest(markets.pop() if len(markets) == 1 else None, as_of=args.as_of)
    keep = frame["code"].isin(codes)
    if args.since is not None:
        keep &= (frame["timestamp_str"] >= args.since.isoformat()).fillna(True)
    return in_column_order(frame[keep].reset_index(drop=True))


# -- plot -------------------------------------------------------------------------------------


def _add_plot_parser(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="chart stored short positions with days to cover or short ratio, and prices",
        description="Draw one panel per code from a store into an image file (needs matplotlib).",
    )
    parser.add_argument("codes", nargs="+", metavar="CODE", type=_args.code)
    _store_option(parser)
    parser.add_argument("--since", type=_args.date, metavar="YYYY-MM-DD")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="FILE")
    parser.set_defaults(run=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    if not args.store.exists():
        print_error("plot", f"no store at {args.store}")
        return 2
    try:
        from ._plot import draw
    except ImportError:
        print_error("plot", "plotting needs matplotlib: pip install 'aiomoomoo[plot]'")
        return 1
    with ShortInterestStore(args.store) as store:
        try:
            frames = {
                code: store.history(code, since=args.since) for code in dict.fromkeys(args.codes)
            }
        except KeyError as exc:
            print_error("plot", str(exc.args[0]))
            return 2
    empty = [code for code, frame in frames.items() if not len(frame)]
    if empty:
        since = f" since {args.since}" if args.since is not None else ""
        print_error("plot", f"no rows of {', '.join(empty)}{since} in the store: nothing to draw")
        return 1
    try:
        draw(frames, args.output)
    except (OSError, ValueError) as exc:
        print_error("plot", f"cannot write {args.output}: {exc}")
        return 1
    panels = f"{len(frames)} code{'s' if len(frames) != 1 else ''}"
    print(f"wrote a chart of {panels} to {escape(args.output)}", file=sys.stderr)
    return 0


#: The store's commands, as the functions that add their parsers.
COMMANDS: Final = (_add_sync_parser, _add_export_parser, _add_plot_parser)
