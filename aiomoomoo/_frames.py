"""Short-interest rows as pandas DataFrames: the official column order, stable dtypes.

Columns are built straight from the protobuf repeated fields, one typed array each, never through
row dicts. Every page, empty or not, has the same dtypes: ``Int64`` for integers (so a field
OpenD left out is ``<NA>`` instead of turning the column into floats), ``float64`` with NaN for
floats, ``string`` for text.
"""

from __future__ import annotations

import array
import datetime as dt
import math
import operator
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from ._errors import ProtocolError
from ._security import Market

__all__ = [
    "HK_COLUMNS",
    "US_COLUMNS",
    "HistoryColumns",
    "columns_for",
    "empty_frame",
    "history_frame",
    "rows_to_frame",
    "trading_dates",
]

_Kind = Literal["int", "float", "str"]

US_COLUMNS: Final = (
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
)
"""US frame columns, in the official SDK's order."""
HK_COLUMNS: Final = (
    "timestamp",
    "timestamp_str",
    "aggregated_short",
    "aggregated_short_ratio",
    "close_price",
    "last_close_price",
)
"""HK frame columns, in the official SDK's order (the aggregated columns before the prices,
the reverse of the protobuf's field order)."""

# Where each column comes from: the protobuf field of the row message, and its kind.
_SOURCES: Final[dict[str, tuple[str, _Kind]]] = {
    "timestamp": ("timestamp", "int"),
    "timestamp_str": ("timestampStr", "str"),
    "shares_short": ("sharesShort", "int"),
    "short_percent": ("shortPercent", "float"),
    "avg_daily_share_volume": ("avgDailyShareVolume", "int"),
    "days_to_cover": ("daysToCover", "float"),
    "close_price": ("closePrice", "float"),
    "last_close_price": ("lastClosePrice", "float"),
    "aggregated_short": ("aggregatedShort", "int"),
    "aggregated_short_ratio": ("aggregatedShortRatio", "float"),
}


def columns_for(market: Market) -> tuple[str, ...]:
    """The column names of ``market``'s frames."""
    return US_COLUMNS if market is Market.US else HK_COLUMNS


# (column, protobuf field, kind) per market, in column order.
_SPECS: Final = {
    market: tuple((column, *_SOURCES[column]) for column in columns_for(market))
    for market in Market
}

_GETTERS: Final = {
    market: operator.attrgetter(*(field for _, field, _ in spec)) for market, spec in _SPECS.items()
}
_INDEXES: Final = {market: pd.Index(columns_for(market)) for market in _SPECS}
# What an absent proto2 optional field reads as: only a column holding one can have gaps.
_DEFAULTS: Final[dict[_Kind, object]] = {"int": 0, "float": 0.0, "str": ""}


def _missing(
    values: Sequence[Any], items: Sequence[Any], field: str, kind: _Kind
) -> list[bool] | None:
    """Which of ``items`` left ``field`` out; None when none did."""
    # HasField is the one costly call per cell, so it is asked only of columns where a default
    # value shows up, which is where a field can have been left out.
    if _DEFAULTS[kind] not in values:
        return None
    missing = [not item.HasField(field) for item in items]
    return missing if any(missing) else None


def _int64(values: Sequence[Any], field: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise _beyond_int64(field, values) from None


def _beyond_int64(field: str, values: Sequence[Any]) -> ProtocolError:
    # uint64 on the wire; no share count comes near 2**63, so one that does is corrupt.
    return ProtocolError(f"OpenD sent a {field} beyond the int64 range: {max(values)}")


def _array(values: Sequence[Any], items: Sequence[Any], field: str, kind: _Kind) -> Any:
    missing = _missing(values, items, field, kind)
    if kind == "str":
        if missing is not None:
            values = [pd.NA if gone else value for value, gone in zip(values, missing, strict=True)]
        # Built directly: pd.array() would check every element again.
        return pd.arrays.StringArray(np.array(values, dtype=object))
    if kind == "float":
        array = np.array(values, dtype=np.float64)
        if missing is not None:
            array[np.array(missing, dtype=bool)] = np.nan
        return array
    mask = np.array(missing, dtype=bool) if missing is not None else np.zeros(len(values), bool)
    return pd.arrays.IntegerArray(_int64(values, field), mask)


def _columns(market: Market, items: Sequence[Any]) -> Any:
    """``items``' values transposed into one tuple per column of ``market``."""
    spec = _SPECS[market]
    # One C-level attribute fetch per row, transposed into columns.
    return zip(*map(_GETTERS[market], items), strict=True) if items else [()] * len(spec)


def _assemble(market: Market, arrays: list[Any], rows: int) -> pd.DataFrame:
    try:
        # The public constructor spends most of its time re-checking what is known here.
        return pd.DataFrame._from_arrays(  # type: ignore[attr-defined,no-any-return]
            arrays,
            columns=_INDEXES[market],
            index=pd.RangeIndex(rows),
            verify_integrity=False,
        )
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return pd.DataFrame(dict(zip(_INDEXES[market], arrays, strict=True)), copy=False)


def rows_to_frame(market: Market, items: Sequence[Any]) -> pd.DataFrame:
    """Build ``market``'s frame from protobuf row messages (``UsShortInterestItem`` for US...)."""
    arrays = [
        _array(values, items, field, kind)
        for values, (_, field, kind) in zip(_columns(market, items), _SPECS[market], strict=True)
    ]
    return _assemble(market, arrays, len(items))


class HistoryColumns:
    """A whole history's columns, pulled out of each page's protobuf rows as the page arrives.

    A walk that kept every page's rows until the end would hold all of them, and their
    transposition, at once: several times the finished frame. Here each page's values go
    straight into growing typed buffers (``array`` for numbers, a byte per row for the
    missing-value masks, a list for text), so a page's rows can be freed as soon as it is
    added, and `frame` hands the buffers to pandas without copying them.
    """

    __slots__ = ("_buffers", "_masks", "_rows", "market")

    def __init__(self, market: Market) -> None:
        self.market = market
        self._rows = 0
        self._buffers: list[Any] = []
        self._masks: list[bytearray | None] = []
        for _, _, kind in _SPECS[market]:
            self._buffers.append(
                [] if kind == "str" else array.array("q" if kind == "int" else "d")
            )
            self._masks.append(bytearray() if kind == "int" else None)

    def __len__(self) -> int:
        return self._rows

    def add(self, items: Sequence[Any]) -> None:
        """Append one page's protobuf rows (newest first, as OpenD sends them)."""
        if not items:
            return
        columns = _columns(self.market, items)
        spec, buffers, masks = _SPECS[self.market], self._buffers, self._masks
        for values, (_, field, kind), buffer, mask in zip(
            columns, spec, buffers, masks, strict=True
        ):
            missing = _missing(values, items, field, kind)
            if kind == "str":
                if missing is not None:
                    values = [pd.NA if gone else v for v, gone in zip(values, missing, strict=True)]
                buffer.extend(values)
            elif kind == "float":
                if missing is not None:
                    values = [
                        math.nan if gone else v for v, gone in zip(values, missing, strict=True)
                    ]
                buffer.extend(values)
            else:
                try:
                    buffer.extend(values)
                except OverflowError:
                    raise _beyond_int64(field, values) from None
                assert mask is not None
                mask.extend(missing if missing is not None else bytes(len(values)))
        self._rows += len(items)

    def frame(self, since: dt.date | None = None) -> pd.DataFrame:
        """The history as one frame, without rows dated before ``since`` (undated rows stay).

        The accumulator is spent: its buffers now belong to the frame.
        """
        if not self._buffers:
            raise RuntimeError("this history's frame was already built")
        arrays: list[Any] = []
        for (_, _, kind), buffer, mask in zip(
            _SPECS[self.market], self._buffers, self._masks, strict=True
        ):
            if kind == "str":
                arrays.append(pd.arrays.StringArray(np.array(buffer, dtype=object)))
                buffer.clear()
            elif kind == "float":
                arrays.append(np.frombuffer(buffer, dtype=np.float64))
            else:
                assert mask is not None
                values = np.frombuffer(buffer, dtype=np.int64)
                arrays.append(pd.arrays.IntegerArray(values, np.frombuffer(mask, dtype=bool)))
        self._buffers, self._masks = [], []
        frame = _assemble(self.market, arrays, self._rows)
        if since is not None and len(frame):
            dates = frame["timestamp_str"]
            older = (dates < since.isoformat()).fillna(False).to_numpy(dtype=bool)
            if older.any():
                frame = frame[~older].reset_index(drop=True)
        return frame


def history_frame(market: Market, items: Sequence[Any], since: dt.date | None) -> pd.DataFrame:
    """A whole history from its rows, without rows dated before ``since`` (undated rows stay)."""
    columns = HistoryColumns(market)
    columns.add(items)
    return columns.frame(since)


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
