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
from ..store import DEFAULT_WAIT, ShortInterestStore, SyncProgress, SyncReport
from . import _args
from ._gateway import GATEWAY_OPTIONS, connected_client, explain
from ._output import INTERRUPTED, escape, in_column_order, parquet_problem, print_error
from ._progress import ProgressDisplay, duration, progress_on, ticking
from ._screens import movers
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
            "seen, the newest pages for the others once their market publishes. Until a "
            "market's next publication can be out nothing of it is asked; then three probe "
            "codes are, and if they find it every code of that market follows. A killed sync "
            "loses nothing; the next one continues."
        ),
    )
    parser.add_argument("codes", nargs="*", metavar="CODE", type=_args.code, help="e.g. US.AAPL")
    _store_option(parser)
    parser.add_argument("--universe", type=Path, metavar="FILE", help="codes, one per line or CSV")
    parser.add_argument("--full", action="store_true", help="re-read every page of every code")
    parser.add_argument(
        "--every-code",
        action="store_true",
        help="ask every code for its new rows, whatever the publication schedule",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests expected and the least time; send and write nothing",
    )
    parser.add_argument(
        "--wait",
        type=_args.wait,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=(
            "how long a write waits for another program's write to the store (default: %(default)g)"
        ),
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
    stored = _Stored()
    try:
        if args.dry_run and not args.store.exists():
            # Planned against an empty store: a dry run creates no file.
            with (
                tempfile.TemporaryDirectory() as empty,
                ShortInterestStore(Path(empty) / "plan.db") as store,
            ):
                return _dry_run(store, codes, args)
        # A dry run only reads: it opens the store read-only, and so waits for no writer.
        with ShortInterestStore(args.store, read_only=args.dry_run, wait=args.wait) as store:
            if args.dry_run:
                return _dry_run(store, codes, args)
            logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
            expected = store.plan(codes, full=args.full, every=args.every_code).requests
            # The display is gone before any message, so that none is drawn over.
            with progress_on(sys.stderr, len(codes), expected=expected) as display:
                stored.display = display
                report = asyncio.run(_sync(store, codes, args, stored))
            moved = movers(store, report.synced) if report.rows_new or report.rows_revised else []
    except MoomooError as exc:  # the gateway's errors, and the store's (StoreError)
        print_error("sync", explain(exc, "sync", args))
        return 1
    except KeyboardInterrupt:
        print_error("sync", f"interrupted: {stored.rows:,} rows stored, run again to resume")
        return INTERRUPTED
    print(_summary(report))
    for line in moved:
        print(line)
    for code, error in report.failures.items():
        # A MoomooError says what OpenD did; anything else is named by its type too.
        what = str(error) if isinstance(error, MoomooError) else f"{type(error).__name__}: {error}"
        print_error("sync", f"{code}: {what}")
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
            return await store.sync(
                client, codes, full=args.full, every=args.every_code, on_progress=stored
            )


def _dry_run(store: ShortInterestStore, codes: list[str], args: argparse.Namespace) -> int:
    plan = store.plan(codes, full=args.full, every=args.every_code)
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
    if plan.follow_up:
        print(f"  and up to {plan.follow_up} more if the probes find a new publication")
    print(f"least wall time at {count}/{period:g}s: {duration(least)}")
    for market in dict.fromkeys(parse_code(code).market for code in codes):
        outlook = plan.markets[market]
        if outlook.frontier is None:
            print(f"{market.name}: nothing stored yet")
            continue
        probes = f"; probing {', '.join(outlook.probes)}" if outlook.probes else ""
        print(
            f"{market.name}: newest published {outlook.frontier.newest}, next expected from "
            f"{outlook.next_publication}{probes}"
        )
    return 0


def _summary(report: SyncReport) -> str:
    lines = [
        f"requests sent: {report.requests}; codes synced: {len(report.synced)}, skipped as not "
        f"due: {len(report.skipped)}, failed: {len(report.failures)}; rows new: "
        f"{report.rows_new}, revised: {report.rows_revised}; {duration(report.elapsed)}"
    ]
    for market, status in report.markets.items():
        if status.newest is None:
            lines.append(f"{market.name}: nothing published stored")
            continue
        if status.found is None:
            probes = "not probed"
        else:
            found = "found a new publication" if status.found else "found nothing new"
            count = len(status.probes)
            probes = f"{count} probe{'s' if count != 1 else ''} {found}"
        lines.append(
            f"{market.name}: newest published {status.newest}; {probes}; next publication "
            f"expected from {status.next_publication}"
        )
    return "\n".join(lines)


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
    parser.add_argument(
        "--partition",
        action="append",
        choices=("market", "year"),
        help="write a Hive-partitioned Parquet dataset into the --output directory "
        "(market=US/...); give it twice to nest (--partition market --partition year)",
    )
    add_output_options(parser)
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if args.partition:
        return _export_dataset(args)
    problem = output_problem(args)
    if problem is not None:
        print_error("export", problem[0])
        return problem[1]
    if not args.store.exists():
        print_error("export", f"no store at {args.store}")
        return 2
    try:
        # Read-only: nothing is created or changed, and no writer is waited for.
        with ShortInterestStore(args.store, read_only=True) as store:
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
    except MoomooError as exc:  # a file that is no readable store (StoreError)
        print_error("export", str(exc))
        return 1
    except KeyboardInterrupt:
        # A file takes its name only once complete; a pipe may have had some batches.
        written = "nothing written" if args.output is not None else "the output is incomplete"
        print_error("export", f"interrupted: {written}")
        return INTERRUPTED


def _export_dataset(args: argparse.Namespace) -> int:
    """``export --partition``: every row of the codes asked for, one fixed schema, into a
    Hive-partitioned Parquet dataset under ``--output``."""
    partition_by = list(dict.fromkeys(args.partition))
    problem = None
    if args.format not in (None, "parquet"):
        problem = f"--partition writes Parquet, not {args.format}"
    elif args.output is None:
        problem = "--partition needs --output DIRECTORY"
    elif args.latest:
        problem = "--partition writes every row; leave out --latest"
    elif not args.store.exists():
        problem = f"no store at {args.store}"
    if problem is not None:
        print_error("export", problem)
        return 2
    problem = parquet_problem()
    if problem is not None:
        print_error("export", problem)
        return 1
    try:
        with ShortInterestStore(args.store) as store:
            rows = store.write_dataset(
                args.output,
                partition_by=partition_by,
                codes=list(dict.fromkeys(args.codes)) or None,
                since=args.since,
                as_of=args.as_of,
            )
    except KeyError as exc:
        print_error("export", str(exc.args[0]))
        return 2
    except FileExistsError as exc:
        print_error("export", f"{args.output} {exc.strerror}")
        return 2
    except OSError as exc:
        print_error("export", f"cannot write {args.output}: {exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        print_error("export", "interrupted: the dataset is incomplete")
        return INTERRUPTED
    print(
        f"wrote {rows:,} row{'s' if rows != 1 else ''} to {escape(args.output)}, "
        f"partitioned by {', '.join(partition_by)}",
        file=sys.stderr,
    )
    return 0


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
    try:
        with ShortInterestStore(args.store, read_only=True) as store:
            frames = {
                code: store.history(code, since=args.since) for code in dict.fromkeys(args.codes)
            }
    except KeyError as exc:
        print_error("plot", str(exc.args[0]))
        return 2
    except MoomooError as exc:  # a file that is no readable store (StoreError)
        print_error("plot", str(exc))
        return 1
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
