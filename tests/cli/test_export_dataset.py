"""``aiomoomoo export --partition``: a Hive-partitioned Parquet dataset with one schema, read
back equal to the store's table by pyarrow.dataset, Polars and DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from aiomoomoo import ShortInterestStore
from aiomoomoo.cli import main

from ..store._stores import mixed

ORDER = [("code", "ascending"), ("timestamp_str", "descending")]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    mixed(path)
    return path


def expected(store: Path) -> pa.Table:
    with ShortInterestStore(store) as opened:
        return opened.to_arrow().sort_by(ORDER)


def export(store: Path, out: Path, *partitions: str) -> int:
    args = ["export", "--store", str(store), "--format", "parquet", "-o", str(out)]
    for partition in partitions:
        args += ["--partition", partition]
    return main(args)


def test_partitioned_by_market_every_file_has_the_whole_schema(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dataset"
    assert export(store, out, "market") == 0
    assert sorted(p.name for p in out.iterdir()) == ["market=HK", "market=US"]
    want = expected(store)
    files = sorted(out.rglob("*.parquet"))
    assert len(files) == 2
    for file in files:
        assert pq.read_schema(file).remove_metadata() == want.schema
    assert f"wrote {want.num_rows} rows to {out}, partitioned by market" in capsys.readouterr().err


def test_pyarrow_polars_and_duckdb_read_back_the_same_rows(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    assert export(store, out, "market", "year") == 0
    assert (out / "market=US" / "year=2025").is_dir()
    want = expected(store)
    names = want.column_names

    dataset = ds.dataset(out, format="parquet", partitioning="hive")
    by_arrow = dataset.to_table().sort_by(ORDER)
    assert by_arrow.select(names).equals(want)
    assert set(by_arrow["market"].to_pylist()) == {"US", "HK"}

    by_polars = pl.scan_parquet(out / "**" / "*.parquet", hive_partitioning=True).collect()
    polars_table = by_polars.to_arrow().sort_by(ORDER).select(names).cast(want.schema)
    assert polars_table.equals(want)

    glob = str(out / "**" / "*.parquet")
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    assert relation is not None
    # to_arrow_table() since DuckDB 1.4; fetch_arrow_table() before (deprecated after).
    by_duckdb = getattr(relation, "to_arrow_table", relation.fetch_arrow_table)()
    duckdb_table = by_duckdb.sort_by(ORDER).select(names).cast(want.schema)
    assert duckdb_table.equals(want)
    assert sorted(set(by_duckdb["year"].to_pylist())) == [2024, 2025, 2026]


def test_a_dataset_is_refused_where_it_cannot_go(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "old.parquet").write_bytes(b"")
    assert export(store, taken, "market") == 2
    assert "already exists: name a new or empty directory" in capsys.readouterr().err
    args = ["export", "--store", str(store), "--partition", "market"]
    assert main([*args, "--format", "csv", "-o", str(tmp_path / "x")]) == 2
    assert "--partition writes Parquet, not csv" in capsys.readouterr().err
    assert main(args) == 2
    assert "--partition needs --output DIRECTORY" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "y"), "--latest"]) == 2
    assert "leave out --latest" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "z"), "--partition", "planet"]) == 2
    assert "invalid choice: 'planet'" in capsys.readouterr().err
