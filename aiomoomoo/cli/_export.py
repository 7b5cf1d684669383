"""The ``export`` and ``plot`` commands: a store's rows written out, or drawn.

They write through `aiomoomoo._cli_output` like every subcommand, so text that came off the wire
(OpenD's error messages, the rows' date strings) is escaped before it reaches a terminal.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from .._security import parse_code
from ..store import ShortInterestStore
from . import _args as _cli_args
from ._output import FORMATS, print_error, write_frame

__all__ = ["SubParsers", "add_export_parser", "add_plot_parser"]

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# -- export -----------------------------------------------------------------------------------


def add_export_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a store's rows as a table, CSV, JSON or Parquet",
        description="Write stored histories, or each code's newest row, with a code column.",
    )
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", type=_cli_args.code, help="default: every code"
    )
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument("--since", type=_cli_args.date, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--as-of", metavar="TIME", help="as known then (ISO, e.g. 2026-05-01T00:00Z)"
    )
    parser.add_argument("--latest", action="store_true", help="only each code's newest row")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here, not stdout")
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if args.format == "parquet" and args.output is None:
        print_error("export", "--format parquet needs --output FILE")
        return 2
    if not args.store.exists():
        print_error("export", f"no store at {args.store}")
        return 2
    with ShortInterestStore(args.store) as store:
        codes = list(dict.fromkeys(args.codes)) or store.codes()
        try:
            frame = _export_frame(store, codes, args)
        except (KeyError, ValueError) as exc:
            print_error("export", str(exc.args[0] if exc.args else exc))
            return 2
    try:
        write_frame(frame, args.format, args.output)
    except ImportError:
        print_error("export", "parquet output needs pyarrow: pip install 'aiomoomoo[parquet]'")
        return 1
    except OSError as exc:
        print_error("export", f"cannot write {args.output}: {exc.strerror or exc}")
        return 1
    return 0


def _export_frame(
    store: ShortInterestStore, codes: list[str], args: argparse.Namespace
) -> pd.DataFrame:
    if args.latest:
        markets = {parse_code(code).market for code in codes}
        frame = store.latest(markets.pop() if len(markets) == 1 else None, as_of=args.as_of)
        unknown = sorted(set(codes) - set(store.codes()))
        if unknown:
            raise KeyError(f"{unknown[0]} is not in the store {str(store.path)!r}")
        keep = frame["code"].isin(codes)
        if args.since is not None:
            keep &= (frame["timestamp_str"] >= args.since.isoformat()).fillna(True)
        return frame[keep].reset_index(drop=True)
    parts = [
        store.history(code, since=args.since, as_of=args.as_of).assign(code=code) for code in codes
    ]
    if not parts:
        return store.latest()
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    return frame[["code", *(c for c in frame.columns if c != "code")]]


# -- plot -------------------------------------------------------------------------------------


def add_plot_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="chart stored short positions with days to cover or short ratio, and prices",
        description="Draw one panel per code from a store into an image file (needs matplotlib).",
    )
    parser.add_argument("codes", nargs="+", metavar="CODE", type=_cli_args.code)
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument("--since", type=_cli_args.date, metavar="YYYY-MM-DD")
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
    try:
        draw(frames, args.output)
    except (OSError, ValueError) as exc:
        print_error("plot", f"cannot write {args.output}: {exc}")
        return 1
    print(f"wrote {args.output}")
    return 0
