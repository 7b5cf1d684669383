"""The terminal view of a table: one ``rich`` table per market, compact unless asked otherwise.

On a terminal, `emit_frame` gives each market its own table with its own columns and, unless
every row is asked for, per code the newest rows, the date range and the row count. Each
column's numbers share their decimal places, and are never cut: on a narrow terminal the
right-most columns are left out (and named) instead. ``rich`` (the ``cli`` extra) draws it;
without it, one line says how to get it and the frame goes out as pandas' text table, as it
would to a pipe.
"""

from __future__ import annotations

import math
import numbers
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import pandas as pd

from .._frames import HK_COLUMNS, US_COLUMNS
from ._output import escape, write_frame

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "NEWEST_ROWS",
    "RICH_HINT",
    "MarketTable",
    "emit_frame",
    "market_tables",
    "reset_hint",
    "rich_console",
    "show_frame",
]

#: How many rows of each code the compact terminal view shows.
NEWEST_ROWS: Final = 5
#: The one line a terminal gets instead of tables and progress when rich is missing.
RICH_HINT: Final = (
    "aiomoomoo: tables and progress on a terminal need rich: pip install 'aiomoomoo[cli]'"
)
#: Columns never left out for width: the code, the date and the first value.
_KEPT_COLUMNS: Final = 3

_hinted = False


def reset_hint() -> None:
    """Let the next `rich_console` without rich print `RICH_HINT` again (once per command)."""
    global _hinted
    _hinted = False


def rich_console(stream: TextIO) -> Console | None:
    """A rich console on the terminal ``stream``; None without rich, after saying once on
    stderr how to get it."""
    global _hinted
    try:
        from rich.console import Console
    except ImportError:
        if not _hinted:
            _hinted = True
            print(RICH_HINT, file=sys.stderr, flush=True)
        return None
    return Console(file=stream, highlight=False, emoji=False, markup=False)


def emit_frame(
    frame: pd.DataFrame,
    fmt: str,
    output: Path | None,
    *,
    all_rows: bool,
    ranked: str | None = None,
) -> None:
    """Write ``frame`` where the user asked: the terminal view for a ``table`` on a terminal
    (`show_frame`, or `show_ranked` titled ``ranked`` for rows whose order is the answer),
    else all of it (`aiomoomoo.cli._output.write_frame`)."""
    if output is None and fmt == "table" and sys.stdout.isatty():
        console = rich_console(sys.stdout)
        if console is not None:
            if ranked is not None:
                show_ranked(frame, console, title=ranked)
            else:
                show_frame(frame, console, all_rows=all_rows)
            return
    write_frame(frame, fmt, output)


@dataclass
class MarketTable:
    """One market's part of the terminal view, as escaped text cells."""

    title: str
    columns: list[str]
    numeric: list[bool]
    rows: list[list[str]] = field(default_factory=list)
    #: Where each code's rows start, for a separator between codes.
    sections: list[int] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)


def market_tables(frame: pd.DataFrame, *, newest: int | None) -> list[MarketTable]:
    """Split a frame with a ``code`` column into one table per market, US first.

    Each table has the code, the date and the market's own columns (not ``timestamp``, the same
    day in epoch seconds). ``newest`` keeps that many rows per code; None keeps every row. A
    column shows all its numbers with the same decimal places, whichever code they belong to.
    """
    tables = []
    codes = [str(code) for code in pd.unique(frame["code"])] if len(frame) else []
    for prefix, title, own in (("US.", "US", US_COLUMNS), ("HK.", "HK", HK_COLUMNS)):
        market_codes = [code for code in codes if code.startswith(prefix)]
        if not market_codes:
            continue
        columns = ["code", *(column for column in own if column != "timestamp")]
        numeric = [column not in ("code", "timestamp_str") for column in columns]
        table = MarketTable(f"{title} short interest", columns, numeric)
        values = columns[1:]
        shown = {
            code: (rows if newest is None else rows.head(newest)).reindex(columns=values)
            for code in market_codes
            for rows in [frame[frame["code"] == code]]
        }
        # Places from every row shown, across codes: one column, one number of decimals.
        every = pd.concat(shown.values())
        places = [_decimal_places(every[column]) for column in values]
        for code in market_codes:
            table.sections.append(len(table.rows))
            for index, row in enumerate(shown[code].itertuples(index=False)):
                cells = [_cell(value, digits) for value, digits in zip(row, places, strict=True)]
                table.rows.append([escape(code) if index == 0 else "", *cells])
            rows = frame[frame["code"] == code]
            table.summaries.append(_summary(code, rows, len(shown[code])))
        tables.append(table)
    return tables


def _decimal_places(column: pd.Series) -> int:
    """The decimals a float column needs to show its values (at most 4), so that its numbers
    line up: 271.00 above 253.47, not 271 above 253.47."""
    if not pd.api.types.is_float_dtype(column):
        return 0
    fractions = (f"{value:.4f}".rstrip("0").partition(".")[2] for value in column.dropna())
    return max((len(fraction) for fraction in fractions), default=0)


def _cell(value: Any, decimals: int = 0) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return escape(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{float(value):,.{decimals}f}"


def _summary(code: str, rows: pd.DataFrame, shown: int) -> str:
    dates = rows["timestamp_str"].dropna()
    span = f", {escape(dates.min())} to {escape(dates.max())}" if len(dates) else ""
    count = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    part = f", newest {shown} shown" if shown < len(rows) else ""
    return f"{escape(code)}: {count}{span}{part}"


def _hint(newest: int) -> str:
    return (
        f"Only the newest {newest} rows of each code are shown: --all shows every row, "
        "--format csv or -o FILE writes everything."
    )


def show_frame(frame: pd.DataFrame, console: Console, *, all_rows: bool) -> None:
    """Draw ``frame`` (with a ``code`` column) on ``console``: one table per market.

    Without ``all_rows`` each code shows only its `NEWEST_ROWS` newest rows, its row count and
    date range, and a hint says how to get everything.
    """
    from rich.text import Text

    if not len(frame):
        console.print(Text("(no rows)"))
        return
    tables = market_tables(frame, newest=None if all_rows else NEWEST_ROWS)
    for table in tables:
        view, left_out = _fitted(console, table)
        console.print(view)
        # Printed apart from the table, which would wrap them to its own width.
        for summary in table.summaries:
            console.print(Text(summary))
        if left_out:
            names = ", ".join(_header(column) for column in left_out)
            console.print(
                Text(f"Left out for the terminal's width: {names} (-o FILE writes every column).")
            )
    if not all_rows and any("shown" in s for table in tables for s in table.summaries):
        console.print(Text(_hint(NEWEST_ROWS), style="dim"))


#: Columns a ranked view leaves out: the epoch-seconds twin of the date, and the store's times.
_NOT_RANKED: Final = ("timestamp", "first_seen", "last_seen")


def show_ranked(frame: pd.DataFrame, console: Console, *, title: str) -> None:
    """Draw ``frame`` (a screen, the changes) on ``console`` as one table in its own row order:
    the order is the answer, so rows are not regrouped by market or code. Numbers are never cut:
    columns are left out from the right instead, and named."""
    from rich.text import Text

    if not len(frame):
        console.print(Text("(no rows)"))
        return
    shown = [str(column) for column in frame.columns if column not in _NOT_RANKED]
    # The percent changes, what a ranking is most often by, right after the code and dates:
    # on a narrow terminal columns are left out from the right.
    dates = ("code", "timestamp_str", "date", "previous_date")
    first = [c for c in shown if c in dates or c.endswith("_change_percent")]
    columns = [*first, *(c for c in shown if c not in first)]
    numeric = [pd.api.types.is_numeric_dtype(frame[column]) for column in columns]
    table = MarketTable(title, columns, numeric)
    places = [_decimal_places(frame[column]) for column in columns]
    for row in frame[columns].itertuples(index=False):
        table.rows.append([_cell(v, digits) for v, digits in zip(row, places, strict=True)])
    view, left_out = _fitted(console, table)
    console.print(view)
    if left_out:
        names = ", ".join(_header(column) for column in left_out)
        console.print(
            Text(f"Left out for the terminal's width: {names} (-o FILE writes every column).")
        )


def _header(column: str) -> str:
    return "date" if column == "timestamp_str" else column.replace("_", " ")


def _fitted(console: Console, table: MarketTable) -> tuple[Any, list[str]]:
    """The widest rich table of ``table`` that fits the console with every number whole, and
    the columns left out (from the right) to get there."""
    from rich.measure import Measurement

    unbounded = console.options.update_width(1_000_000)
    count = len(table.columns)
    while True:
        view = _rich_table(table, count)
        natural = Measurement.get(console, unbounded, view).maximum
        if count <= _KEPT_COLUMNS or natural <= console.width:
            return view, table.columns[count:]
        count -= 1


def _rich_table(table: MarketTable, count: int) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    view = Table(
        title=table.title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for index in range(count):
        column, numeric = table.columns[index], table.numeric[index]
        # Headers wrap to their column's data, so the table is no wider than its cells.
        words = _header(column)
        widest = max((len(row[index]) for row in table.rows), default=0)
        width = max(widest, *(len(word) for word in words.split()))
        # Numbers are never cut (columns are left out instead); a text cell (a hostile
        # gateway's long date) folds.
        view.add_column(
            textwrap.fill(words, width),
            justify="right" if numeric else "left",
            no_wrap=numeric,
            min_width=widest if numeric else None,
            overflow="fold",
        )
    for index, row in enumerate(table.rows):
        if index and index in table.sections:
            view.add_section()
        # Text, not str: a cell is never read as rich markup.
        view.add_row(*(Text(cell) for cell in row[:count]))
    return view
