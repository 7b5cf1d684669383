"""The ``export`` and ``plot`` commands, and what the store commands share.

Text that came off the wire (OpenD's error messages, the rows' date strings) goes through
`escape` before it reaches a terminal, so a hostile gateway cannot retitle or clear it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Final, TypeAlias

import pandas as pd

from ._security import parse_code
from ._store import ShortInterestStore

__all__ = ["add_export_parser", "add_plot_parser", "code_arg", "escape", "fail"]

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_FORMATS: Final = ("table", "csv", "json", "parquet")


def escape(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), not obeyed."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in str(text))


def fail(command: str, message: object, status: int = 1) -> int:
    """Print ``aiomoomoo COMMAND: message`` (escaped) on stderr; return ``status``."""
    print(f"aiomoomoo {command}: {escape(message)}", file=sys.stderr)
    return status


def code_arg(text: str) -> str:
    """An argparse type: a normalised code, or a usage error naming what is allowed."""
    try:
        return parse_code(text).code
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- export -----------------------------------------------------------------------------------


def add_export_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a store's rows as a table, CSV, JSON or Parquet",
        description="Write stored histories, or each code's newest row, with a code column.",
    )
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", type=code_arg, help="default: every code"
    )
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--as-of", metavar="TIME", help="as known then (ISO, e.g. 2026-05-01T00:00Z)"
    )
    parser.add_argument("--latest", action="store_true", help="only each code's newest row")
    parser.add_argument("--format", choices=_FORMATS, default="table")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here, not stdout")
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if args.format == "parquet" and args.output is None:
        return fail("export", "--format parquet needs --output FILE", 2)
    if not args.store.exists():
        return fail("export", f"no store at {args.store}", 2)
    with ShortInterestStore(args.store) as store:
        codes = list(dict.fromkeys(args.codes)) or store.codes()
        try:
            frame = _export_frame(store, codes, args)
        except (KeyError, ValueError) as exc:
            return fail("export", str(exc.args[0] if exc.args else exc), 2)
    try:
        _write(frame, args.format, args.output)
    except ImportError:
        return fail("export", "parquet output needs pyarrow: pip install 'aiomoomoo[parquet]'")
    except OSError as exc:
        return fail("export", f"cannot write {args.output}: {exc.strerror or exc}")
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


def _write(frame: pd.DataFrame, fmt: str, output: Path | None) -> None:
    if fmt == "parquet":
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401

        assert output is not None
        frame.to_parquet(output, index=False)
        return
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", indent=1) + "\n"
    else:
        text = escape(frame.to_string(index=False) if len(frame) else "(no rows)") + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")


# -- plot -------------------------------------------------------------------------------------


def add_plot_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="chart stored short positions with days to cover or short ratio, and prices",
        description="Draw one panel per code from a store into an image file (needs matplotlib).",
    )
    parser.add_argument("codes", nargs="+", metavar="CODE", type=code_arg)
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="FILE")
    parser.set_defaults(run=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    if not args.store.exists():
        return fail("plot", f"no store at {args.store}", 2)
    try:
        from ._plot import draw
    except ImportError:
        return fail("plot", "plotting needs matplotlib: pip install 'aiomoomoo[plot]'")
    with ShortInterestStore(args.store) as store:
        try:
            frames = {
                code: store.history(code, since=args.since) for code in dict.fromkeys(args.codes)
            }
        except KeyError as exc:
            return fail("plot", str(exc.args[0]), 2)
    try:
        draw(frames, args.output)
    except (OSError, ValueError) as exc:
        return fail("plot", f"cannot write {args.output}: {exc}")
    print(f"wrote {args.output}")
    return 0
