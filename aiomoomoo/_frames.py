"""Short-interest rows as pandas DataFrames: the official column order, stable dtypes.

Frames are built from the plain columns the message layer decoded (`aiomoomoo._rows.Rows`), one
typed array each, never through row dicts. Every page, empty or not, has the same dtypes:
``Int64`` for integers (so a field OpenD left out is ``<NA>`` instead of turning the column into
floats), ``float64`` with NaN for floats, ``string`` for text.
"""

from __future__ import annotations

import array
import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from ._rows import HK_COLUMNS, KINDS, US_COLUMNS, Kind, Rows, columns_for
from ._security import Market

__all__ = [
    "HK_COLUMNS",
    "US_COLUMNS",
    "HistoryColumns",
    "columns_for",
    "empty_frame",
    "rows_to_frame",
    "trading_dates",
]

_INDEXES: Final = {market: pd.Index(columns_for(market)) for market in Market}


def _with_missing(values: Sequence[Any], gone: Sequence[bool], missing: object) -> list[Any]:
    return [missing if out else value for value, out in zip(values, gone, strict=True)]


class _Layout:
    """Where ``market``'s columns go in its frame, grouped by kind, so each kind's columns
    become one NumPy call."""

    __slots__ = ("columns", "float_at", "int_at", "kinds", "text_at")

    def __init__(self, market: Market) -> None:
        names = columns_for(market)
        self.kinds: tuple[Kind, ...] = tuple(KINDS[name] for name in names)

        def of(kind: Kind) -> tuple[int, ...]:
            return tuple(at for at, k in enumerate(self.kinds) if k == kind)

        self.int_at, self.float_at, self.text_at = of("int"), of("float"), of("str")
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
        for at in range(len(layout.int_at))
    ]
    text = np.array(["2026-04-24", pd.NA, ""], dtype=object)
    texts = [pd.arrays.StringArray(text.copy()) for _ in layout.text_at]
    floats = np.arange(rows * len(layout.float_at), dtype=np.float64).reshape(-1, rows)
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


def rows_to_frame(rows: Rows) -> pd.DataFrame:
    """Build the frame of ``rows``' market from its decoded columns."""
    layout = _LAYOUTS[rows.market]
    values, left_out = rows.values, rows.left_out
    ints = np.array([values[at] for at in layout.int_at], dtype=np.int64)
    masks = np.zeros(ints.shape, dtype=bool)
    floats = np.array([values[at] for at in layout.float_at], dtype=np.float64)
    # Only a column where some row left its field out costs more than the NumPy calls.
    for row, at in enumerate(layout.int_at):
        if (gone := left_out[at]) is not None:
            masks[row] = gone
    for row, at in enumerate(layout.float_at):
        if (gone := left_out[at]) is not None:
            floats[row, np.array(gone, dtype=bool)] = np.nan
    texts = [_text(values[at], left_out[at]) for at in layout.text_at]
    return _build(layout, list(zip(ints, masks, strict=True)), texts, floats, rows.count)


def _text(values: Sequence[Any], gone: Sequence[bool] | None) -> Any:
    if gone is not None:
        values = _with_missing(values, gone, pd.NA)
    # Built directly: pd.array() would check every element again.
    return pd.arrays.StringArray(np.array(values, dtype=object))


class HistoryColumns:
    """A whole history's columns, gathered from each page's rows as the page arrives.

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
        for kind in _LAYOUTS[market].kinds:
            self._buffers.append(
                [] if kind == "str" else array.array("q" if kind == "int" else "d")
            )
            self._masks.append(bytearray() if kind == "int" else None)

    def __len__(self) -> int:
        return self._rows

    def add(self, rows: Rows) -> None:
        """Append one page's rows (newest first, as OpenD sends them)."""
        if not rows.count:
            return
        values: Sequence[Any]
        for values, gone, kind, buffer, mask in zip(
            rows.values,
            rows.left_out,
            _LAYOUTS[self.market].kinds,
            self._buffers,
            self._masks,
            strict=True,
        ):
            if kind == "int":
                assert mask is not None
                mask.extend(bytes(rows.count) if gone is None else bytes(gone))
            elif gone is not None:
                values = _with_missing(values, gone, pd.NA if kind == "str" else math.nan)
            buffer.extend(values)
        self._rows += rows.count

    def frame(self, since: dt.date | None = None) -> pd.DataFrame:
        """The history as one frame, without rows dated before ``since`` (undated rows stay).

        The accumulator is spent: its buffers now belong to the frame.
        """
        if not self._buffers:
            raise RuntimeError("this history's frame was already built")
        ints: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        floats: list[np.ndarray[Any, Any]] = []
        texts: list[Any] = []
        for kind, buffer, mask in zip(
            _LAYOUTS[self.market].kinds, self._buffers, self._masks, strict=True
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


def empty_frame(market: Market) -> pd.DataFrame:
    """A zero-row frame with ``market``'s columns and dtypes."""
    return rows_to_frame(Rows.empty(market))


def trading_dates(frame: pd.DataFrame, market: Market) -> pd.Series:
    """The ``timestamp`` column as timezone-aware datetimes in ``market``'s own timezone.

    OpenD stamps each row with midnight of the trading day in the market's timezone, so a plain
    UTC conversion shows Hong Kong rows on the previous day; this conversion does not.
    """
    utc = pd.to_datetime(frame["timestamp"].astype("float64"), unit="s", utc=True)
    return utc.dt.tz_convert(market.timezone)
