"""Short-interest rows as pandas DataFrames: the official column order, stable dtypes.

Columns are built straight from the protobuf repeated fields, one typed array each, never through
row dicts. Every page, empty or not, has the same dtypes: ``Int64`` for integers (so a field
OpenD left out is ``<NA>`` instead of turning the column into floats), ``float64`` with NaN for
floats, ``string`` for text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd

from ._security import Market

__all__ = [
    "HK_COLUMNS",
    "US_COLUMNS",
    "columns_for",
    "empty_frame",
    "rows_to_frame",
    "trading_dates",
]

_Kind = Literal["int", "float", "str"]

# (column, protobuf field, kind), in the column order the official SDK uses. HK puts the
# aggregated columns before the prices, the reverse of the protobuf's field order.
_US_SPEC: Final[tuple[tuple[str, str, _Kind], ...]] = (
    ("timestamp", "timestamp", "int"),
    ("timestamp_str", "timestampStr", "str"),
    ("shares_short", "sharesShort", "int"),
    ("short_percent", "shortPercent", "float"),
    ("avg_daily_share_volume", "avgDailyShareVolume", "int"),
    ("days_to_cover", "daysToCover", "float"),
    ("close_price", "closePrice", "float"),
    ("last_close_price", "lastClosePrice", "float"),
)
_HK_SPEC: Final[tuple[tuple[str, str, _Kind], ...]] = (
    ("timestamp", "timestamp", "int"),
    ("timestamp_str", "timestampStr", "str"),
    ("aggregated_short", "aggregatedShort", "int"),
    ("aggregated_short_ratio", "aggregatedShortRatio", "float"),
    ("close_price", "closePrice", "float"),
    ("last_close_price", "lastClosePrice", "float"),
)
_SPECS: Final = {Market.US: _US_SPEC, Market.HK: _HK_SPEC}

#: US frame columns, in the official SDK's order.
US_COLUMNS: Final = tuple(column for column, _, _ in _US_SPEC)
#: HK frame columns, in the official SDK's order.
HK_COLUMNS: Final = tuple(column for column, _, _ in _HK_SPEC)

_STRING: Final = pd.StringDtype()


def columns_for(market: Market) -> tuple[str, ...]:
    """The column names of ``market``'s frames."""
    return US_COLUMNS if market is Market.US else HK_COLUMNS


def _column(items: Sequence[object], field: str, kind: _Kind) -> object:
    values = [getattr(item, field) for item in items]
    missing = [not item.HasField(field) for item in items]  # type: ignore[attr-defined]
    if kind == "str":
        if any(missing):
            values = [None if gone else value for value, gone in zip(values, missing, strict=True)]
        return pd.array(values, dtype=_STRING)
    if kind == "float":
        array = np.array(values, dtype=np.float64)
        if any(missing):
            array[np.array(missing)] = np.nan
        return array
    return pd.arrays.IntegerArray(np.array(values, dtype=np.int64), np.array(missing, dtype=bool))


def rows_to_frame(market: Market, items: Sequence[object]) -> pd.DataFrame:
    """Build ``market``'s frame from protobuf row messages (``UsShortInterestItem`` for US...)."""
    return pd.DataFrame(
        {column: _column(items, field, kind) for column, field, kind in _SPECS[market]},
        copy=False,
    )


def empty_frame(market: Market) -> pd.DataFrame:
    """A zero-row frame with ``market``'s columns and dtypes."""
    return rows_to_frame(market, ())


def trading_dates(frame: pd.DataFrame, market: Market) -> pd.Series:
    """The ``timestamp`` column as timezone-aware datetimes in ``market``'s own timezone.

    OpenD stamps each row with midnight of the trading day in the market's timezone, so a plain
    UTC conversion shows Hong Kong rows on the previous day; this conversion does not.
    """
    utc = pd.to_datetime(frame["timestamp"].astype("float64"), unit="s", utc=True)
    return utc.dt.tz_convert(market.timezone)
