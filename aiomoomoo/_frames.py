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
from collections.abc import Callable, Sequence
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
    "records_of",
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


def _text(values: Sequence[Any], items: Sequence[Any], field: str) -> Any:
    missing = _missing(values, items, field, "str")
    if missing is not None:
        values = [pd.NA if gone else value for value, gone in zip(values, missing, strict=True)]
    # Built directly: pd.array() would check every element again.
    return pd.arrays.StringArray(np.array(values, dtype=object))


def _columns(market: Market, items: Sequence[Any]) -> Any:
    """``items``' values transposed into one tuple per column of ``market``."""
    spec = _SPECS[market]
    # One C-level attribute fetch per row, transposed into columns.
    return zip(*map(_GETTERS[market], items), strict=True) if items else [()] * len(spec)


class _Layout:
    """Where ``market``'s fields go in its frame, grouped by kind.

    A page is read in one pass with the fields in this order (integers, floats, text), so each
    kind's columns come out side by side and each kind becomes one NumPy call.
    """

    __slots__ = ("columns", "float_at", "floats", "getter", "int_at", "ints", "text_at", "texts")

    def __init__(self, market: Market) -> None:
        spec = _SPECS[market]

        def of(kind: _Kind) -> tuple[tuple[str, ...], tuple[int, ...]]:
            where = [(at, field) for at, (_, field, k) in enumerate(spec) if k == kind]
            return tuple(field for _, field in where), tuple(at for at, _ in where)

        self.ints, self.int_at = of("int")
        self.floats, self.float_at = of("float")
        self.texts, self.text_at = of("str")
        self.getter = operator.attrgetter(*self.ints, *self.floats, *self.texts)
        self.columns = _INDEXES[market]


_LAYOUTS: Final = {market: _Layout(market) for market in Market}
# Its ``_simple_new`` takes values and mask as they are, without the constructor's checks.
_IntegerArray: Any = pd.arrays.IntegerArray

# A frame from its typed columns: the Int64 ones as (values, mask), the text ones as
# StringArrays, the float ones as the rows of one 2-D array; all rows long.
_Ints = Sequence[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]
_Builder = Callable[[_Layout, _Ints, Sequence[Any], np.ndarray[Any, Any], int], pd.DataFrame]


def _public_frame(
    layout: _Layout, ints: _Ints, texts: Sequence[Any], floats: np.ndarray[Any, Any], rows: int
) -> pd.DataFrame:
    """The frame through pandas' public constructor (the fallback for `_block_frame`)."""
    arrays: dict[int, Any] = dict(zip(layout.text_at, texts, strict=True))
    arrays.update(zip(layout.float_at, floats, strict=True))
    for (values, mask), at in zip(ints, layout.int_at, strict=True):
        arrays[at] = pd.arrays.IntegerArray(values, mask)
    columns = layout.columns.view()
    data = {name: arrays[at] for at, name in enumerate(columns)}
    return pd.DataFrame(data, index=pd.RangeIndex(rows), columns=columns, copy=False)


def _block_frame(
    layout: _Layout, ints: _Ints, texts: Sequence[Any], floats: np.ndarray[Any, Any], rows: int
) -> pd.DataFrame:
    """The frame `_public_frame` builds, made the way pandas' constructor ends up making it.

    The constructor spends most of its time finding out what is known here (which columns
    share a dtype, that the lengths agree, that the arrays are valid), so this hands pandas
    its blocks directly: one per Int64 column, one per text column, and one 2-D block for
    the floats, in the order the constructor would give. These are pandas internals;
    `_pick_builder` checks once that they still give the public constructor's frame.
    """
    blocks: list[Any] = [
        _new_block(_IntegerArray._simple_new(values, mask), _Placement(slice(at, at + 1)), ndim=2)
        for (values, mask), at in zip(ints, layout.int_at, strict=True)
    ]
    for text, at in zip(texts, layout.text_at, strict=True):
        blocks.append(_new_block(text, _Placement(slice(at, at + 1)), ndim=2))
    place = _Placement(np.array(layout.float_at, dtype=np.intp))
    blocks.append(_new_block(floats, place, ndim=2))
    # A view per frame: setting one frame's ``columns.name`` must not rename every other's.
    axes = [layout.columns.view(), pd.RangeIndex(rows)]
    manager = _BlockManager(blocks, axes, verify_integrity=False)
    return pd.DataFrame._from_mgr(manager, manager.axes)  # type: ignore[attr-defined,no-any-return]


def _pick_builder() -> _Builder:
    """`_block_frame` if this pandas builds with it exactly what its constructor does."""
    layout = _LAYOUTS[Market.US]
    rows = 3
    ints = [
        (np.arange(rows, dtype=np.int64) + at, np.arange(rows) == at % rows)
        for at in range(len(layout.ints))
    ]
    text = np.array(["2026-04-24", pd.NA, ""], dtype=object)
    texts = [pd.arrays.StringArray(text.copy()) for _ in layout.texts]
    floats = np.arange(rows * len(layout.floats), dtype=np.float64).reshape(-1, rows)
    floats[0, 1] = np.nan
    try:
        fast = _block_frame(layout, ints, texts, floats, rows)
    except Exception:  # pragma: no cover - a pandas whose internals moved: use the public path
        return _public_frame
    public = _public_frame(layout, ints, texts, floats.copy(), rows)
    same = (
        fast.equals(public)
        and fast.dtypes.equals(public.dtypes)
        and [type(fast[c].array) for c in fast] == [type(public[c].array) for c in public]
    )
    return _block_frame if same else _public_frame


try:  # pandas' block internals, the same in pandas 2.2 and 3.
    from pandas._libs.internals import (  # type: ignore[import-not-found]
        BlockPlacement as _Placement,
    )
    from pandas.core.internals import BlockManager as _BlockManager  # type: ignore[import-not-found]
    from pandas.core.internals.blocks import new_block as _new_block  # type: ignore[import-not-found]

    _build = _pick_builder()
except ImportError:  # pragma: no cover - a pandas without them
    _build = _public_frame


def rows_to_frame(market: Market, items: Sequence[Any]) -> pd.DataFrame:
    """Build ``market``'s frame from protobuf row messages (``UsShortInterestItem`` for US...)."""
    layout = _LAYOUTS[market]
    n_ints, n_floats = len(layout.ints), len(layout.floats)
    # One attrgetter call per row reads all its fields; zip turns the rows into columns.
    columns = (
        list(zip(*map(layout.getter, items), strict=True)) if items else [()] * len(layout.columns)
    )
    int_columns = columns[:n_ints]
    try:
        values = np.array(int_columns, dtype=np.int64)
    except OverflowError:
        for column, field in zip(int_columns, layout.ints, strict=True):
            _int64(column, field)  # raises for the first column out of range
        raise
    masks = np.zeros(values.shape, dtype=bool)
    for row, (column, field) in enumerate(zip(int_columns, layout.ints, strict=True)):
        # The default checked here first, without a call: the usual page has none.
        if 0 in column and (missing := _missing(column, items, field, "int")) is not None:
            masks[row] = missing
    float_columns = columns[n_ints : n_ints + n_floats]
    floats = np.array(float_columns, dtype=np.float64)
    for row, (column, field) in enumerate(zip(float_columns, layout.floats, strict=True)):
        if 0.0 in column and (missing := _missing(column, items, field, "float")) is not None:
            floats[row, np.array(missing, dtype=bool)] = np.nan
    texts = [
        _text(column, items, field)
        for column, field in zip(columns[n_ints + n_floats :], layout.texts, strict=True)
    ]
    return _build(layout, list(zip(values, masks, strict=True)), texts, floats, len(items))


def records_of(market: Market, items: Sequence[Any]) -> list[tuple[Any, ...]]:
    """``market``'s protobuf rows as plain tuples in `columns_for` order, None where left out."""
    spec = _SPECS[market]
    records: list[tuple[Any, ...]] = []
    for values in map(_GETTERS[market], items):
        if any(value == _DEFAULTS[kind] for value, (_, _, kind) in zip(values, spec, strict=True)):
            item = items[len(records)]
            values = tuple(
                value if item.HasField(field) else None
                for value, (_, field, _) in zip(values, spec, strict=True)
            )
        records.append(values)
    return records


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
        ints: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        floats: list[np.ndarray[Any, Any]] = []
        texts: list[Any] = []
        for (_, _, kind), buffer, mask in zip(
            _SPECS[self.market], self._buffers, self._masks, strict=True
        ):
            if kind == "str":
                texts.append(pd.arrays.StringArray(np.array(buffer, dtype=object)))
                buffer.clear()
            elif kind == "float":
                floats.append(np.frombuffer(buffer, dtype=np.float64))
            else:
                assert mask is not None
                values = np.frombuffer(buffer, dtype=np.int64)
                ints.append((values, np.frombuffer(mask, dtype=bool)))
        layout = _LAYOUTS[self.market]
        # The float columns become one 2-D block, as pandas' constructor would make them.
        block = np.vstack(floats)
        self._buffers, self._masks = [], []
        frame = _build(layout, ints, texts, block, self._rows)
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
