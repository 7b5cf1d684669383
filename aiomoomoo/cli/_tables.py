"""The options, checks and writing every command that writes a table shares (``short-interest``,
``export``): the format from ``--format`` or ``-o FILE``'s extension, a bad output refused before
any work, the terminal view or the whole table, and one line saying what was written."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ._output import (
    FORMATS,
    check_writable,
    format_for,
    parquet_problem,
    print_error,
    write_frames,
    wrote,
)
from ._terminal import emit_frame

__all__ = ["add_output_options", "output_problem", "write_table", "write_tables"]


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--output`` and ``--all``, the same for every command that writes a
    table."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the --output file's extension, else table)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write here, not stdout (.csv, .json, .parquet or .txt pick the format)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="on a terminal, show every row rather than the newest rows of each code",
    )


def output_problem(args: argparse.Namespace) -> tuple[str, int] | None:
    """What is wrong with ``--format`` and ``--output``, with the exit status, before any work;
    None when the table can be written. Sets ``args.format`` to the format to write."""
    try:
        args.format = format_for(args.format, args.output)
    except ValueError as exc:
        return str(exc), 2
    if args.format == "parquet":
        if args.output is None:
            return "--format parquet needs --output FILE", 2
        problem = parquet_problem()
        if problem is not None:
            return problem, 1
    if args.output is not None:
        try:
            check_writable(args.output)
        except OSError as exc:
            return f"cannot write {args.output}: {exc.strerror or exc}", 1
    return None


def write_table(
    command: str, frame: pd.DataFrame, args: argparse.Namespace, *, ranked: str | None = None
) -> int:
    """Write ``frame`` as ``args`` ask (terminal view, pipe or file); 0, or 1 if it cannot.

    ``ranked`` titles the terminal view of rows whose order is the answer (a screen, the
    changes): one table in that order rather than one per market."""
    try:
        emit_frame(frame, args.format, args.output, all_rows=args.all, ranked=ranked)
    except OSError as exc:
        where = args.output if args.output is not None else "standard output"
        print_error(command, f"cannot write {where}: {exc.strerror or exc}")
        return 1
    if args.output is not None:
        wrote(len(frame), args.output)
    return 0


def write_tables(command: str, frames: Iterable[pd.DataFrame], args: argparse.Namespace) -> int:
    """`write_table` for a table that comes in parts (frames of the same columns): files and
    pipes get each part as it comes (`write_frames`); the terminal view needs the whole."""
    if args.format == "table":
        # A text table lines up its columns over every row.
        parts = list(frames)
        return write_table(command, pd.concat(parts, ignore_index=True), args)
    try:
        rows = write_frames(frames, args.format, args.output)
    except OSError as exc:
        where = args.output if args.output is not None else "standard output"
        print_error(command, f"cannot write {where}: {exc.strerror or exc}")
        return 1
    if args.output is not None:
        wrote(rows, args.output)
    return 0
