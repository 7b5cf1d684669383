"""What the command line writes to files and pipes, and the one-line messages around it.

Everything that came off the wire (OpenD's messages, the dates in the rows) may hold control
characters a hostile gateway put there to retitle or clear the terminal, or to fake a line;
`escape` makes them visible instead, and every command writes such text through it.

Piped or written with ``-o``, a frame goes out complete and machine-readable through pandas
(`write_frame`), its columns in one fixed order (`in_column_order`) whichever command wrote it.
The terminal view is `aiomoomoo.cli._terminal`'s.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
import pandas as pd

from .._frames import HK_COLUMNS, US_COLUMNS

__all__ = [
    "EXTENSION_FORMATS",
    "FORMATS",
    "INTERRUPTED",
    "check_writable",
    "escape",
    "format_for",
    "in_column_order",
    "parquet_problem",
    "print_error",
    "write_frame",
    "write_frames",
    "wrote",
]

FORMATS: Final = ("table", "csv", "json", "parquet")
#: Exit status after Ctrl-C, as a shell reports a process ended by SIGINT.
INTERRUPTED: Final = 130
#: The format ``-o FILE`` implies when ``--format`` is not given, by the file's extension.
EXTENSION_FORMATS: Final = {
    ".csv": "csv",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "table",
}
#: Every market's official columns, US first: the order of a mixed table.
OFFICIAL_COLUMNS: Final = (*US_COLUMNS, *(c for c in HK_COLUMNS if c not in US_COLUMNS))
_US_ONLY: Final = frozenset(US_COLUMNS) - frozenset(HK_COLUMNS)
#: The store's columns after the official ones, per short position, then its times.
STORE_COLUMNS: Final = (
    *(
        f"{position}_{suffix}"
        for position in ("shares_short", "aggregated_short")
        for suffix in ("previous", "change", "change_percent")
    ),
    "first_seen",
    "last_seen",
)

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


def wrote(rows: int, output: Path) -> None:
    """Say on stderr, in one line, that ``rows`` rows went to the file ``output``."""
    noun = "row" if rows == 1 else "rows"
    print(f"wrote {rows:,} {noun} to {escape(output)}", file=sys.stderr, flush=True)


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


def parquet_problem() -> str | None:
    """None when parquet files can be written here; else one line saying why not (the real
    import error) and how to fix it."""
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ModuleNotFoundError) and exc.name == "pyarrow":
            return "parquet output needs pyarrow: pip install 'aiomoomoo[parquet]'"
        fix = "pip install 'aiomoomoo[parquet]'"
        if "numpy" in reason.lower():
            # pyarrow 26 refuses numpy 1.x at import, though its metadata allows it.
            fix = "pip install 'numpy>=2', or keep numpy and pip install 'pyarrow<26'"
        return f"parquet output needs pyarrow, which fails to import ({reason}): {fix}"
    return None


def in_column_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its columns in the one order every table is written in: ``code``, the
    official columns (one market's in its official order; both markets' with US first), the
    store's change columns, ``first_seen``, ``last_seen``, then anything else; whatever order
    the frame's codes or columns came in."""
    present = set(frame.columns)
    official = OFFICIAL_COLUMNS if present & _US_ONLY else HK_COLUMNS
    known = ("code", *official, *STORE_COLUMNS)
    order = [c for c in known if c in present]
    order += [c for c in frame.columns if c not in set(known)]
    return frame[order]


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
        text = _csv_ready(frame).to_csv(index=False)
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


def write_frames(frames: Iterable[pd.DataFrame], fmt: str, output: Path | None) -> int:
    """Write ``frames`` (parts of one table, with the same columns) as ``fmt`` (``csv``,
    ``json`` or ``parquet``) to ``output`` (standard output when None), each part as it comes,
    so that memory holds one part; return the rows written. The bytes are those `write_frame`
    writes for the whole table. A file is written beside ``output`` and takes its name only
    once complete: an error or Ctrl-C midway leaves ``output`` as it was."""
    if fmt not in ("csv", "json", "parquet"):
        raise ValueError(f"cannot write a table in parts as {fmt!r}")
    if output is None:
        if fmt == "parquet":
            raise ValueError("parquet output needs a file")
        return _write_text(frames, fmt, sys.stdout, escaped=sys.stdout.isatty())
    partial = output.with_name(f".{output.name}.partial")
    try:
        if fmt == "parquet":
            rows = _write_parquet(frames, partial)
        else:
            with partial.open("w", encoding="utf-8") as stream:
                rows = _write_text(frames, fmt, stream, escaped=False)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _write_text(frames: Iterable[pd.DataFrame], fmt: str, stream: TextIO, *, escaped: bool) -> int:
    rows = 0
    first = True
    for frame in frames:
        if escaped:
            frame = _escape_cells(frame)
        if fmt == "csv":
            if first or len(frame):
                stream.write(_csv_ready(frame).to_csv(index=False, header=first))
                first = False
        elif len(frame):
            text = frame.to_json(orient="records", date_format="iso", indent=1)
            # The records between the brackets, joined as one array's.
            stream.write(("[\n" if first else ",\n") + text[2:-2])
            first = False
        rows += len(frame)
    if fmt == "json":
        stream.write("[\n\n]\n" if first else "\n]\n")
    stream.flush()
    return rows


def _write_parquet(frames: Iterable[pd.DataFrame], output: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    writer: Any = None
    try:
        for frame in frames:
            if writer is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = pq.ParquetWriter(output, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False)
            writer.write_table(table)
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its UTC time columns as the text pandas writes for them in CSV, made at
    once with NumPy (pandas formats each time on its own, the most of a large export's time).

    Only a column whose every time has a microsecond fraction and none finer is made here:
    pandas writes that as ``YYYY-MM-DD HH:MM:SS.ffffff+00:00`` whatever rows share a chunk; any
    other column is left to pandas.
    """
    made: dict[str, Any] = {}
    done: list[tuple[np.ndarray[Any, Any], Any]] = []
    for column in frame.columns:
        series = frame[column]
        kind = str(series.dtype)
        if not len(series) or kind not in ("datetime64[ns, UTC]", "datetime64[us, UTC]"):
            continue
        micros = series.to_numpy(dtype="datetime64[us]")
        ints = micros.view("int64")
        if kind.startswith("datetime64[ns"):
            nanos = series.to_numpy(dtype="datetime64[ns]").view("int64")
            if (nanos % 1000).any():
                continue
        if pd.isna(micros).any() or not (ints % 1_000_000).all():
            continue
        # A store's first_seen and last_seen are often the same times: made once.
        same = next((text for other, text in done if np.array_equal(other, ints)), None)
        if same is None:
            iso = np.datetime_as_string(micros, unit="us")
            same = np.char.add(np.char.replace(iso, "T", " "), "+00:00").astype(object)
            done.append((ints, same))
        made[column] = same
    return frame.assign(**made) if made else frame


def _escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else escape(v))
    return frame
