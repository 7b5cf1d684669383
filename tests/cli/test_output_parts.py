"""A table written in parts (`write_frames`, what ``export`` streams) is byte for byte the table
written whole (`write_frame`), in every format that streams (JSON: the same values on pandas
2.2.0, which writes a whole nullable integer column with a missing value as floats)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from packaging.version import Version

from aiomoomoo.cli._output import write_frame, write_frames


def _parts() -> list[pd.DataFrame]:
    whole = pd.DataFrame(
        {
            "code": pd.array(["HK.00700", "US.AAPL", "US.AAPL", "US.TSLA"], dtype="string"),
            "shares_short": pd.array([None, 10, 20, 30], dtype="Int64"),
            "close_price": [1.5, float("nan"), 2.25, 3.0],
            "first_seen": pd.to_datetime([1, 2, 3, 4], unit="s", utc=True),
        }
    )
    return [whole.iloc[:1], whole.iloc[1:3], whole.iloc[3:]]


def _same_text(fmt: str, parts: Path, whole: Path) -> None:
    if fmt == "json":
        # The same values: pandas 2.2.0 writes a nullable integer column that holds a missing
        # value as floats (10.0) when written whole, and a part without one as integers (10).
        assert json.loads(parts.read_text()) == json.loads(whole.read_text())
        if Version(pd.__version__) < Version("2.2.1"):
            return
    assert parts.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_text_in_parts_is_the_whole_tables_text(tmp_path: Path, fmt: str) -> None:
    parts = _parts()
    write_frame(pd.concat(parts), fmt, tmp_path / "whole")
    assert write_frames(iter(parts), fmt, tmp_path / "parts") == 4
    _same_text(fmt, tmp_path / "parts", tmp_path / "whole")
    # No rows at all: the empty table's text, header included.
    write_frame(parts[0].iloc[:0], fmt, tmp_path / "none")
    assert write_frames(iter([parts[0].iloc[:0]]), fmt, tmp_path / "none-parts") == 0
    _same_text(fmt, tmp_path / "none-parts", tmp_path / "none")


def test_parquet_in_parts_reads_back_as_the_whole_table(tmp_path: Path) -> None:
    parts = _parts()
    assert write_frames(iter(parts), "parquet", tmp_path / "parts.parquet") == 4
    back = pd.read_parquet(tmp_path / "parts.parquet")
    pd.testing.assert_frame_equal(back, pd.concat(parts, ignore_index=True))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_failure_midway_leaves_the_file_as_it_was(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / "out"
    target.write_text("before")

    def failing() -> Iterator[pd.DataFrame]:
        yield _parts()[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_frames(failing(), fmt, target)
    assert target.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    "micros",
    [
        [1_700_000_000_123_456, 1_700_000_000_000_001, 1_700_000_001_999_999],
        # A whole second among them: pandas decides the fraction per chunk, so pandas writes it.
        [1_700_000_000_123_456, 1_700_000_000_000_000],
        [1_700_000_000_000_000],
    ],
)
def test_csv_times_are_pandas_own_text(tmp_path: Path, micros: list[int]) -> None:
    times = pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype("datetime64[ns, UTC]")
    later = times + pd.Timedelta(microseconds=1)
    frame = pd.DataFrame(
        {"first_seen": times, "n": range(len(micros)), "last_seen": times, "superseded": later}
    )
    write_frame(frame, "csv", tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_text() == frame.to_csv(index=False)
