"""What the command line writes: escaped wire text, complete files and the terminal view.

Everything that came off the wire (OpenD's messages, the dates in the rows) may hold control
characters a hostile gateway put there to retitle or clear the terminal, or to fake a line;
`escape` makes them visible instead, and every subcommand writes such text through it.

Piped or written with ``-o``, a frame goes out complete and machine-readable (`write_frame`). On a
terminal, `show_frame` gives each market its own table with its own columns and, unless every row
is asked for, a compact view: per code the newest rows, the date range and the row count. The
tables are drawn with ``rich`` when it is installed (the ``cli`` extra), else as plain text tables
with the same content.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import pandas as pd

from .._frames import HK_COLUMNS, US_COLUMNS

__all__ = [
    "EXTENSION_FORMATS",
    "FORMATS",
    "NEWEST_ROWS",
    "MarketTable",
    "check_writable",
    "emit_frame",
    "escape",
    "format_for",
    "market_tables",
    "print_error",
    "show_frame",
    "terminal_width",
    "write_frame",
]

FORMATS: Final = ("table", "csv", "json", "parquet")
#: The format ``-o FILE`` implies when ``--format`` is not given, by the file's extension.
EXTENSION_FORMATS: Final = {
    ".csv": "csv",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "table",
}
#: How many rows of each code the compact terminal view shows.
NEWEST_ROWS: Final = 5

# Control characters (C0, DEL, C1), format characters (bidi overrides and isolates, zero-width
# marks), surrogates, private use, and the line and paragraph separators.
_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def escape(text: object) -> str:
    """``str(text)`` with every non-printable character written as a Python escape (``\\x1b``).

    A gateway's text can then not move the cursor, retitle or clear the terminal, reorder what
    follows (bidi overrides) or start a fake line (``\\r``, ``\\n``). Printable text, Chinese
    included, is left as it is.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        _escaped(char) if unicodedata.category(char) in _UNSAFE_CATEGORIES else char
        for char in text
    )


_SHORT_ESCAPES: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def print_error(command: str, message: object, *, stream: TextIO | None = None) -> None:
    """Write ``aiomoomoo COMMAND: MESSAGE`` on one line of stderr, the message escaped."""
    print(f"aiomoomoo {command}: {escape(message)}", file=stream or sys.stderr, flush=True)


def format_for(fmt: str | None, output: Path | None) -> str:
    """The output format: ``--format`` if given, else the one ``-o FILE``'s extension names,
    else ``"table"``; ``ValueError`` for a file whose extension names none."""
    if fmt is not None:
        return fmt
    if output is None:
        return "table"
    implied = EXTENSION_FORMATS.get(output.suffix.lower())
    if implied is None:
        known = ", ".join(EXTENSION_FORMATS)
        raise ValueError(
            f"cannot tell the format of {str(output)!r} from its extension ({known}); add --format"
        )
    return implied


def check_writable(output: Path) -> None:
    """Raise ``OSError`` if ``output`` cannot be written, before any work is spent on it.

    It opens the file for appending, which changes nothing in an existing file, and removes it
    again if it did not exist.
    """
    existed = output.exists()
    if output.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(output))
    with output.open("ab"):
        pass
    if not existed:
        output.unlink()


def emit_frame(frame: pd.DataFrame, fmt: str, output: Path | None, *, all_rows: bool) -> None:
    """Write ``frame`` where the command line's user asked: the compact terminal view
    (`show_frame`) for a ``table`` on a terminal, else all of it (`write_frame`)."""
    if output is None and fmt == "table" and sys.stdout.isatty():
        show_frame(frame, all_rows=all_rows)
    else:
        write_frame(frame, fmt, output)


def write_frame(frame: pd.DataFrame, fmt: str, output: Path | None) -> None:
    """Write all of ``frame`` as ``fmt`` to ``output`` (standard output when None).

    Files and pipes get the data exactly as it came; on a terminal, text cells are escaped.
    """
    if fmt == "parquet":
        if output is None:
            raise ValueError("parquet output needs a file")
        frame.to_parquet(output, index=False)
        return
    to_terminal = output is None and sys.stdout.isatty()
    if to_terminal:
        frame = _escape_cells(frame)
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        # JSON escapes control characters and, with ASCII output, everything else unusual.
        # Times (a store's first_seen and last_seen) as ISO text, not epoch milliseconds.
        text = frame.to_json(orient="records", date_format="iso", indent=1) + "\n"
    else:
        text = (frame.to_string(index=False) if len(frame) else "(no rows)") + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")


def _escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else escape(v))
    return frame


# -- the terminal view -------------------------------------------------------------------------


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
    day in epoch seconds). ``newest`` keeps that many rows per code; None keeps every row.
    """
    tables = []
    codes = [str(code) for code in pd.unique(frame["code"])] if len(frame) else []
    for prefix, title, own in (("US.", "US", US_COLUMNS), ("HK.", "HK", HK_COLUMNS)):
        market_codes = [code for code in codes if code.startswith(prefix)]
        if not market_codes:
            continue
        columns = ["code", *(column for column in own if column != "timestamp")]
        numeric = [column != "code" and column != "timestamp_str" for column in columns]
        table = MarketTable(f"{title} short interest", columns, numeric)
        for code in market_codes:
            rows = frame[frame["code"] == code]
            shown = rows if newest is None else rows.head(newest)
            table.sections.append(len(table.rows))
            values = shown.reindex(columns=columns[1:])
            places = [_decimal_places(values[column]) for column in columns[1:]]
            for index, row in enumerate(values.itertuples(index=False)):
                cells = [_cell(value, digits) for value, digits in zip(row, places, strict=True)]
                table.rows.append([escape(code) if index == 0 else "", *cells])
            table.summaries.append(_summary(code, rows, len(shown)))
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


def show_frame(
    frame: pd.DataFrame, *, all_rows: bool, stream: TextIO | None = None, use_rich: bool = True
) -> None:
    """Draw ``frame`` (with a ``code`` column) on a terminal: one table per market.

    Without ``all_rows`` each code shows only its `NEWEST_ROWS` newest rows, its row count and
    date range, and a hint says how to get everything. ``rich`` draws the tables when installed
    (and ``use_rich``); otherwise they are plain text with the same content.
    """
    stream = stream or sys.stdout
    if not len(frame):
        stream.write("(no rows)\n")
        stream.flush()
        return
    tables = market_tables(frame, newest=None if all_rows else NEWEST_ROWS)
    truncated = not all_rows and any(
        "shown" in summary for table in tables for summary in table.summaries
    )
    rich_console = _rich_console(stream) if use_rich else None
    if rich_console is not None:
        _show_rich(rich_console, tables, truncated)
    else:
        _show_plain(stream, tables, truncated)
    stream.flush()


def _rich_console(stream: TextIO) -> Any:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream, highlight=False, emoji=False, markup=False)


def _show_rich(console: Any, tables: Sequence[MarketTable], truncated: bool) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for table in tables:
        view = Table(
            title=table.title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            show_edge=False,
            padding=(0, 1, 0, 0),
        )
        for index, (column, numeric) in enumerate(zip(table.columns, table.numeric, strict=True)):
            # Headers wrap to their column's data, so the table is no wider than its cells.
            words = "date" if column == "timestamp_str" else column.replace("_", " ")
            widest = max((len(row[index]) for row in table.rows), default=0)
            width = max(widest, *(len(word) for word in words.split()))
            # Numbers are never cut; a text cell (a hostile gateway's long date) folds.
            view.add_column(
                textwrap.fill(words, width),
                justify="right" if numeric else "left",
                no_wrap=numeric,
                overflow="ellipsis" if numeric else "fold",
            )
        for index, row in enumerate(table.rows):
            if index and index in table.sections:
                view.add_section()
            # Text, not str: a cell is never read as rich markup.
            view.add_row(*(Text(cell) for cell in row))
        console.print(view)
        # Printed apart from the table, which would wrap them to its own width.
        for summary in table.summaries:
            console.print(Text(summary))
    if truncated:
        console.print(Text(_hint(NEWEST_ROWS), style="dim"))


def _show_plain(stream: TextIO, tables: Sequence[MarketTable], truncated: bool) -> None:
    for number, table in enumerate(tables):
        if number:
            stream.write("\n")
        text = pd.DataFrame(table.rows, columns=table.columns).to_string(index=False)
        stream.write(f"{table.title}\n{text}\n")
        for summary in table.summaries:
            stream.write(f"  {summary}\n")
    if truncated:
        stream.write(f"\n{_hint(NEWEST_ROWS)}\n")


def terminal_width(stream: TextIO, *, default: int = 80) -> int:
    """The width of the terminal ``stream`` writes to, 40 to 120 columns."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = default
    return max(40, min(columns, 120))
