"""The store as Arrow: query rows straight into typed arrays, no DataFrame on the way.

`ShortInterestStore.to_arrow` gives the columns the DataFrames have (``code``, the official
columns, the change columns, ``first_seen`` and ``last_seen``) with one fixed Arrow type per
column (`arrow_schema`), so files written from it (`write_dataset`, a Hive-partitioned Parquet
dataset) have the same schema whatever they hold. pyarrow is imported here only, when called.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from .._frames import columns_for, empty_frame
from .._security import Market
from . import _schema as sql
from ._screen_sql import CHANGED as _CHANGED

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["PARTITIONS", "arrow_schema", "read_arrow", "write_dataset"]

#: What a dataset may be partitioned by, in the order the directories nest.
PARTITIONS: Final = ("market", "year")


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise ImportError(
            f"Arrow output needs pyarrow: pip install 'aiomoomoo[parquet]' ({exc})"
        ) from exc
    return pyarrow


def _names(markets: Sequence[Market]) -> list[str]:
    """The frames' column order for ``markets``: code, official columns, change columns, seen."""
    values = list(dict.fromkeys(c for m in markets for c in columns_for(m)))
    derived = [
        f"{_CHANGED[m]}_{suffix}"
        for m in markets
        for suffix in ("previous", "change", "change_percent")
    ]
    return ["code", *values, *derived, "first_seen", "last_seen"]


def arrow_schema(markets: Sequence[Market] = (Market.US, Market.HK)) -> pa.Schema:
    """The one Arrow schema of ``markets``' rows: strings, int64, float64 and UTC timestamps."""
    pa = _pyarrow()
    # The DataFrames' own dtypes (Int64, float64, string), each as its Arrow type.
    dtypes = {name: dtype for m in markets for name, dtype in empty_frame(m).dtypes.items()}
    fields = []
    for name in _names(markets):
        if name == "code":
            kind = pa.string()
        elif name.endswith("_seen"):
            kind = pa.timestamp("us", tz="UTC")
        elif name.endswith("_change_percent"):
            kind = pa.float64()
        else:
            # A _previous or _change column has its value column's type.
            dtype = dtypes[name.removesuffix("_previous").removesuffix("_change")]
            if pd.api.types.is_integer_dtype(dtype):
                kind = pa.int64()
            elif pd.api.types.is_float_dtype(dtype):
                kind = pa.float64()
            else:
                kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _market_table(db: sqlite3.Connection, market: Market, as_of: int | None) -> dict[str, Any]:
    """``market``'s rows as Arrow arrays by column, newest first per code, change columns too."""
    pa = _pyarrow()
    pc = pa.compute
    schema = arrow_schema([market])
    query = sql.rows_query(market, as_of=as_of is not None, by="market", newest=False)
    moments = () if as_of is None else (as_of, as_of)
    rows = db.execute(query, (market.name, *moments)).fetchall()
    names = ["code", *columns_for(market), "first_seen", "last_seen"]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    arrays: dict[str, Any] = {}
    for name, column in zip(names, values, strict=True):
        kind = schema.field(name).type
        if name.endswith("_seen"):
            # Integer microseconds since the epoch, as the file keeps them.
            arrays[name] = pa.array(column, pa.int64()).cast(kind)
        else:
            arrays[name] = pa.array(column, kind)
    changed = _CHANGED[market]
    current, codes = arrays[changed], arrays["code"]
    count = len(current)
    if count:
        # Rows run newest first within each code: the previous period is the next row down,
        # when that row is the same code's.
        below = pa.concat_arrays([current[1:], pa.nulls(1, pa.int64())])
        same = pa.concat_arrays([pc.equal(codes[:-1], codes[1:]), pa.array([False])])
        previous = pc.if_else(same, below, pa.scalar(None, pa.int64()))
    else:
        previous = pa.array([], pa.int64())
    change = pc.subtract(current, previous)
    divisor = pc.if_else(pc.equal(previous, 0), pa.scalar(None, pa.int64()), previous)
    ratio = pc.multiply(
        pc.divide(pc.cast(change, pa.float64()), pc.cast(divisor, pa.float64())), 100.0
    )
    arrays[f"{changed}_previous"] = previous
    arrays[f"{changed}_change"] = change
    # To hundredths as numpy (and so the frames) round: scale, round half to even, divide back;
    # Arrow's round(ndigits=2) multiplies by 0.01 and lands a bit off (362.40000000000003).
    hundredths = pc.round(pc.multiply(ratio, 100.0), round_mode="half_to_even")
    arrays[f"{changed}_change_percent"] = pc.divide(hundredths, 100.0)
    return arrays


def read_arrow(
    db: sqlite3.Connection,
    markets: Sequence[Market],
    *,
    codes: Sequence[str] | None,
    since: str | None,
    as_of: int | None,
) -> pa.Table:
    """`ShortInterestStore.to_arrow`: arguments already checked."""
    pa = _pyarrow()
    pc = pa.compute
    schema = arrow_schema(markets)
    parts = []
    for market in markets:
        arrays = _market_table(db, market, as_of)
        count = len(arrays["code"])
        columns = [
            arrays[field.name] if field.name in arrays else pa.nulls(count, field.type)
            for field in schema
        ]
        parts.append(pa.Table.from_arrays(columns, schema=schema))
    table = pa.concat_tables(parts)
    if len(markets) > 1:
        table = table.take(pc.sort_indices(table["code"]))  # a stable sort: dates stay in order
    keep = None
    if codes is not None:
        keep = pc.is_in(table["code"], value_set=pa.array(list(codes), pa.string()))
    if since is not None:
        newer = pc.fill_null(pc.greater_equal(table["timestamp_str"], since), True)
        keep = newer if keep is None else pc.and_(keep, newer)
    return table if keep is None else table.filter(keep)


def write_dataset(table: pa.Table, directory: Path, partition_by: Sequence[str]) -> int:
    """Write ``table`` (`arrow_schema`) as a Hive-partitioned Parquet dataset under
    ``directory`` (``market=US/year=2026/part-0.parquet``); return the files written.

    ``partition_by`` names `PARTITIONS` in nesting order (already checked): ``market`` from the
    code's prefix, ``year`` from the row's date. Every file has the whole schema, whatever
    market it holds. Data already in ``directory`` is an error (pyarrow's ``ArrowInvalid``).
    """
    pa = _pyarrow()
    pc = pa.compute
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    extra = {
        "market": pc.utf8_slice_codeunits(table["code"], 0, 2),
        "year": pc.cast(pc.utf8_slice_codeunits(table["timestamp_str"], 0, 4), pa.int32()),
    }
    fields = []
    for name in partition_by:
        table = table.append_column(name, extra[name])
        fields.append(table.schema.field(name))
    written: list[str] = []
    ds.write_dataset(
        table,
        directory,
        format="parquet",
        partitioning=ds.partitioning(pa.schema(fields), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="error",
        file_visitor=lambda file: written.append(file.path),
    )
    return len(written)
