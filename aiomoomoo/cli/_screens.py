"""The questions across codes: ``screen`` (each code's newest row, filtered and sorted) and
``changes`` (each code's newest publication against the one before), and the few top movers a
sync's summary names."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pandas as pd

from .._security import Market, parse_code
from ..store import ShortInterestStore
from . import _args
from ._output import escape, in_column_order, print_error
from ._tables import add_output_options, output_problem, write_table

__all__ = ["COMMANDS", "movers"]

SubParsers = argparse._SubParsersAction
_MARKETS: Final = ("US", "HK")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -float("inf") < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number, such as 5 or -2.5, got {text!r}")
    return value


def _top(text: str) -> int:
    value = _args._whole(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows >= 1, got {text!r}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, required=True, metavar="PATH", help="the store file")
    parser.add_argument(
        "--as-of", type=_args.as_of, metavar="TIME", help="as known then (e.g. 2026-05-01T00:00Z)"
    )
    parser.add_argument("--top", type=_top, metavar="N", help="only the first N rows")


# -- screen -----------------------------------------------------------------------------------


def _add_screen_parser(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "screen",
        help="each code's newest row with its change, filtered and sorted",
        description="Each code's newest row at --as-of with its change columns, filtered by "
        "the conditions and sorted, computed in SQLite over the store.",
    )
    parser.add_argument("--market", choices=_MARKETS, help="one market's codes (default: both)")
    _common(parser)
    conditions = parser.add_argument_group("conditions (a row missing the value never passes)")
    conditions.add_argument(
        "--min-days-to-cover", type=_number, metavar="X", help="US only: days to cover >= X"
    )
    conditions.add_argument(
        "--min-short-percent",
        type=_number,
        metavar="X",
        help="short percent >= X (US short_percent, HK aggregated_short_ratio)",
    )
    conditions.add_argument(
        "--min-change-percent", type=_number, metavar="X", help="short position change >= X %%"
    )
    conditions.add_argument(
        "--max-change-percent", type=_number, metavar="X", help="short position change <= X %%"
    )
    parser.add_argument(
        "--by",
        metavar="COLUMN",
        help="sort by this column, largest first (change_percent: each market's own change)",
    )
    parser.add_argument("--ascending", action="store_true", help="sort smallest first")
    add_output_options(parser)
    parser.set_defaults(run=_run_screen)


def _run_screen(args: argparse.Namespace) -> int:
    problem = output_problem(args) or _no_store(args.store)
    if problem is not None:
        print_error("screen", problem[0])
        return problem[1]
    with ShortInterestStore(args.store, read_only=True) as store:
        try:
            frame = store.screen(
                args.market,
                as_of=args.as_of,
                min_days_to_cover=args.min_days_to_cover,
                min_short_percent=args.min_short_percent,
                min_change_percent=args.min_change_percent,
                max_change_percent=args.max_change_percent,
                by=args.by,
                ascending=args.ascending,
                top=args.top,
            )
        except ValueError as exc:
            print_error("screen", str(exc))
            return 2
    title = f"{args.market or 'US and HK'} screen"
    return write_table("screen", in_column_order(frame), args, ranked=title)


# -- changes ----------------------------------------------------------------------------------


def _add_changes_parser(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "changes",
        help="each code's newest publication against the one before, biggest moves first",
        description="Per code, the newest short position against the previous publication "
        "(or the stored value at --since), largest absolute percent change first.",
    )
    parser.add_argument("--market", choices=_MARKETS, help="one market (default: each in turn)")
    _common(parser)
    parser.add_argument(
        "--since", type=_args.date, metavar="YYYY-MM-DD", help="compare with the row on this date"
    )
    add_output_options(parser)
    parser.set_defaults(run=_run_changes)


def _run_changes(args: argparse.Namespace) -> int:
    problem = output_problem(args) or _no_store(args.store)
    if problem is not None:
        print_error("changes", problem[0])
        return problem[1]
    markets = [args.market] if args.market else list(_MARKETS)
    with ShortInterestStore(args.store, read_only=True) as store:
        parts = [
            store.changes(market, since=args.since, as_of=args.as_of).head(args.top)
            for market in markets
        ]
    frame = _one_table(parts)
    title = f"{args.market or 'US and HK'} changes"
    return write_table("changes", frame, args, ranked=title)


def _one_table(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Both markets' changes under one set of column names: ``value`` for the short position."""
    renamed = []
    for part in parts:
        value = part.columns[3]
        renamed.append(
            part.rename(
                columns={
                    value: "short_position",
                    f"{value}_previous": "previous",
                    f"{value}_change": "change",
                    f"{value}_change_percent": "change_percent",
                }
            )
        )
    if len(renamed) == 1:
        return parts[0]
    non_empty = [part for part in renamed if len(part)]
    return pd.concat(non_empty or renamed[:1], ignore_index=True)


# -- the sync's summary -----------------------------------------------------------------------


def movers(store: ShortInterestStore, codes: Iterable[str], *, count: int = 3) -> list[str]:
    """A line per market naming the ``count`` codes of ``codes`` whose newest publication
    moved most, ``US movers: US.AAPL +12.5% (2026-04-30), ...``; none for a market without."""
    wanted = set(codes)
    lines = []
    for market in (Market.US, Market.HK):
        if not any(parse_code(code).market is market for code in wanted):
            continue
        frame = store.changes(market)
        percent = frame.columns[-1]
        frame = frame[frame["code"].isin(wanted) & frame[percent].notna()].head(count)
        if len(frame):
            moves = ", ".join(
                f"{escape(row.code)} {row[percent]:+.2f}% ({row.date})"
                for _, row in frame.iterrows()
            )
            lines.append(f"{market.name} movers: {moves}")
    return lines


def _no_store(path: Path) -> tuple[str, int] | None:
    return None if path.exists() else (f"no store at {path}", 2)


#: The commands of this module, as the functions that add their parsers.
COMMANDS: Final = (_add_screen_parser, _add_changes_parser)
