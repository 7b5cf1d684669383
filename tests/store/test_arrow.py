"""``ShortInterestStore.to_arrow``: the frames' columns and values in one fixed Arrow schema,
built without pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from aiomoomoo import ShortInterestStore

from ._stores import mixed, us, write


def frame_of(
    store: ShortInterestStore, market: str | None = None, **kwargs: object
) -> pd.DataFrame:
    """Every code's history as one frame, the way ``export`` builds it."""
    latest = store.latest(market)
    parts = [
        store.history(code, **kwargs).assign(code=code)  # type: ignore[arg-type]
        for code in latest["code"]
    ]
    frame = pd.concat(parts, ignore_index=True)
    return frame[list(latest.columns)]


def as_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).cast(schema)


@pytest.mark.parametrize("market", [None, "US", "HK"])
def test_the_table_holds_the_frames_columns_and_values(tmp_path: Path, market: str | None) -> None:
    mixed(tmp_path / "s.db")
    with ShortInterestStore(tmp_path / "s.db") as store:
        table = store.to_arrow(market)
        frame = frame_of(store, market)
    assert table.column_names == list(frame.columns)
    assert table.equals(as_arrow(frame, table.schema))
    # One fixed type per column, whatever pandas would have picked.
    assert table.schema.field("code").type == pa.string()
    assert table.schema.field("first_seen").type == pa.timestamp("us", tz="UTC")
    if market != "HK":
        assert table.schema.field("shares_short").type == pa.int64()
        assert table.schema.field("shares_short_change_percent").type == pa.float64()


def test_codes_since_and_as_of_select_as_history_does(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    write(
        path,
        {
            "US.AAPL": [us("2026-04-30", 100), us("2026-04-15", 50)],
            "US.MSFT": [us("2026-04-30", 7)],
        },
    )
    write(path, {"US.AAPL": [us("2026-04-30", 200), us("2026-04-15", 50)]})
    with ShortInterestStore(path) as store:
        now = store.to_arrow("US", codes=["US.AAPL"])
        assert now["shares_short"].to_pylist() == [200, 50]
        assert now["shares_short_change_percent"].to_pylist() == [300.0, None]
        # The first write's moment: the revision of 2026-04-30 came after it.
        first_write = store.history("US.AAPL")["first_seen"].min().to_pydatetime()
        before = store.to_arrow("US", codes=["US.AAPL"], as_of=first_write)
        assert before["shares_short"].to_pylist() == [100, 50]
        assert before.equals(as_arrow(frame_of(store, "US", as_of=first_write)[:2], before.schema))
        since = store.to_arrow(since="2026-04-20")
        assert since["code"].to_pylist() == ["US.AAPL", "US.MSFT"]
        with pytest.raises(KeyError, match=r"US\.TSLA is not in the store"):
            store.to_arrow(codes=["US.TSLA"])
        with pytest.raises(ValueError, match="market must be"):
            store.to_arrow("JP")


def test_an_empty_store_gives_an_empty_table_of_the_same_schema(tmp_path: Path) -> None:
    with ShortInterestStore(tmp_path / "s.db") as store:
        empty = store.to_arrow()
    mixed(tmp_path / "t.db", codes=1)
    with ShortInterestStore(tmp_path / "t.db") as store:
        full = store.to_arrow()
    assert empty.num_rows == 0
    assert empty.schema == full.schema


def test_write_dataset_checks_its_partitions_and_its_directory(tmp_path: Path) -> None:
    mixed(tmp_path / "s.db", codes=2)
    with ShortInterestStore(tmp_path / "s.db") as store:
        for bad in (["planet"], ["market", "market"], []):
            with pytest.raises(ValueError, match="partition_by must name 'market' and/or 'year'"):
                store.write_dataset(tmp_path / "out", partition_by=bad)
        with pytest.raises(TypeError, match="not one str"):
            store.write_dataset(tmp_path / "out", partition_by="market")
        rows = store.write_dataset(tmp_path / "out", partition_by=["year"], codes=["US.S000"])
        assert rows == store.to_arrow(codes=["US.S000"]).num_rows
        assert sorted(p.name for p in (tmp_path / "out").iterdir())[0].startswith("year=")
        with pytest.raises(FileExistsError, match="already exists"):
            store.write_dataset(tmp_path / "out")
