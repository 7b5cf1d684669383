"""``aiomoomoo export`` writes the rows the store holds, each once: a code given twice, and
``--since`` keeping its own day with ``--latest`` as without. The store is written in process by
the store's writer, so no simulator is needed."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import ShortInterestStore
from aiomoomoo._security import parse_code
from aiomoomoo.cli import main
from aiomoomoo.store._write import StoreWriter


def us(day: int) -> tuple[Any, ...]:
    return (1_700_000_000 + day, f"2026-04-{day:02d}", 1000 + day, 1.5, 200, 2.0, 10.0, 9.5)


def hk(day: int) -> tuple[Any, ...]:
    return (1_700_000_000 + day, f"2026-04-{day:02d}", 5000 + day, 0.25, 400.0, 398.0)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """US.AAPL up to 2026-04-30, US.TSLA up to 2026-04-15, HK.00700 up to 2026-04-10."""
    path = tmp_path / "s.db"
    ShortInterestStore(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        writer = StoreWriter(db)
        writer.store_page(parse_code("US.AAPL"), None, [us(30), us(15)], "-1")
        writer.store_page(parse_code("US.TSLA"), None, [us(15), us(1)], "-1")
        writer.store_page(parse_code("HK.00700"), None, [hk(10), hk(3)], "-1")
    return path


def export(store: Path, capsys: pytest.CaptureFixture[str], *args: str) -> pd.DataFrame:
    capsys.readouterr()
    assert main(["export", "--store", str(store), *args, "--format", "csv"]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_a_code_given_twice_is_written_once(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = export(store, capsys, "US.AAPL", "US.AAPL")
    assert rows[["code", "timestamp_str"]].values.tolist() == [
        ["US.AAPL", "2026-04-30"],
        ["US.AAPL", "2026-04-15"],
    ]
    latest = export(store, capsys, "--latest", "US.AAPL", "US.AAPL")
    assert latest[["code", "timestamp_str"]].values.tolist() == [["US.AAPL", "2026-04-30"]]


def test_since_keeps_its_own_day_with_latest_as_without(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # US.TSLA's newest row is on the since day itself: kept; HK.00700's is older: left out.
    latest = export(store, capsys, "--latest", "--since", "2026-04-15")
    assert latest[["code", "timestamp_str"]].values.tolist() == [
        ["US.AAPL", "2026-04-30"],
        ["US.TSLA", "2026-04-15"],
    ]
    history = export(store, capsys, "US.TSLA", "--since", "2026-04-15")
    assert history["timestamp_str"].tolist() == ["2026-04-15"]
