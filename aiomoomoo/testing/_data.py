"""Users' own rows for the simulator: DataFrames and CSV or Parquet files in the official columns.

The columns are those `aiomoomoo.Client.fetch_short_interest` returns (`US_COLUMNS` for a US
code, `HK_COLUMNS` for an HK code); a file adds a ``code`` column, as ``aiomoomoo
short-interest --format csv|parquet`` writes it, so rows captured from a real OpenD can be served
again. A missing value (NaN, ``<NA>``, an empty CSV cell) becomes a field left out of the reply.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._frames import HK_COLUMNS, US_COLUMNS, columns_for
from .._security import Market, parse_code
from ._history import HkRow, UsRow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_histories", "rows_from_frame", "rows_of"]

_INTEGER_COLUMNS: Final = frozenset(
    {"timestamp", "shares_short", "avg_daily_share_volume", "aggregated_short"}
)
_TEXT_COLUMNS: Final = frozenset({"timestamp_str"})
_KNOWN: Final = frozenset(US_COLUMNS) | frozenset(HK_COLUMNS)


def _cell(value: Any, column: str, code: str) -> int | float | str | None:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if column in _TEXT_COLUMNS:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{code}: {column} {value!r} is not a number") from None
    if column in _INTEGER_COLUMNS:
        if not number.is_integer():
            raise ValueError(f"{code}: {column} {value!r} is not a whole number")
        return int(value) if isinstance(value, int) else int(number)
    return number


def rows_from_frame(code: str, frame: pd.DataFrame) -> list[UsRow] | list[HkRow]:
    """``frame``'s rows, in its order, as the rows the simulator serves for ``code``.

    The frame needs every column of ``code``'s market; columns of the other market (a table
    of both markets) must be empty, and a ``code`` column, if any, must hold only ``code``.
    """
    market = parse_code(code).market
    columns = columns_for(market)
    present = set(map(str, frame.columns))
    unknown = sorted(present - _KNOWN - {"code"})
    if unknown:
        raise ValueError(
            f"{code}: unknown columns {unknown}; the official ones are {list(columns)}"
        )
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(
            f"{code}: missing columns {missing}; {market.name} rows need {list(columns)}"
        )
    if "code" in present:
        others = sorted({str(c) for c in frame["code"]} - {code})
        if others:
            raise ValueError(f"rows given for {code} have code {others[0]!r}")
    for column in sorted(present - set(columns) - {"code"}):
        if frame[column].notna().any():
            raise ValueError(
                f"{code}: a {market.name} row has a {column}, which is not its market's"
            )
    row_type = UsRow if market is Market.US else HkRow
    values = [frame[c].tolist() for c in columns]
    order = [f.name for f in dataclasses.fields(row_type)]
    rows = []
    for cells in zip(*values, strict=True):
        fields = {c: _cell(v, c, code) for c, v in zip(columns, cells, strict=True)}
        rows.append(row_type(**{name: fields[name] for name in order}))  # type: ignore[arg-type]
    return rows  # type: ignore[return-value]


def rows_of(code: str, history: Any) -> list[UsRow] | list[HkRow]:
    """``history`` (a DataFrame, or rows) as a list of rows for ``code``."""
    if hasattr(history, "columns") and hasattr(history, "iloc"):
        return rows_from_frame(code, history)
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(
            f"the history of {code} must be a DataFrame or a sequence of UsRow or HkRow, "
            f"got {type(history).__name__}"
        )
    return list(history)


def load_histories(path: str | os.PathLike[str]) -> dict[str, list[UsRow] | list[HkRow]]:
    """Every code's rows from a CSV or Parquet file with a ``code`` column, in file order."""
    import pandas as pd

    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(file)
    elif suffix == ".csv":
        frame = pd.read_csv(file, dtype={"code": str, "timestamp_str": str})
    else:
        raise ValueError(f"{file}: data files must end in .csv or .parquet, not {suffix!r}")
    if "code" not in frame.columns:
        raise ValueError(f"{file}: no code column; each row must name its code (US.AAPL ...)")
    histories: dict[str, list[UsRow] | list[HkRow]] = {}
    for raw_code, rows in frame.groupby("code", sort=False):
        code = parse_code(str(raw_code)).code
        histories[code] = rows_from_frame(code, rows.drop(columns="code"))
    return histories
