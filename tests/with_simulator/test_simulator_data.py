"""Users' own rows: ``OpenDSimulator(histories=...)``, `load_histories` and ``simulate --data``."""

from __future__ import annotations

import asyncio
import signal
import warnings
from pathlib import Path

import pandas as pd
import pytest

from aiomoomoo import Client
from aiomoomoo.cli import main
from aiomoomoo.testing import HkRow, OpenDSimulator, UsRow, load_histories

from ..cli.test_simulate_command import START_TIMEOUT, simulate
from .conftest import connected
from .test_simulator import as_row, items

pytestmark = pytest.mark.anyio

CODES = ["US.AAPL", "HK.00700", "US.BRK.B"]


async def fetch(sim: OpenDSimulator, codes: list[str]) -> pd.DataFrame:
    async with Client(sim.host, sim.port, rate_limit=None) as client:
        return await client.fetch_short_interest_many(codes)


async def test_frames_fetched_from_one_simulator_are_served_the_same_by_another() -> None:
    async with OpenDSimulator(quota=None, seed=7) as source:
        captured = await fetch(source, CODES)
    histories = {
        str(code): rows.drop(columns="code").reset_index(drop=True)
        for code, rows in captured.groupby("code", sort=False)
    }
    async with OpenDSimulator(quota=None, histories=histories) as replay:
        for code in CODES:
            assert replay.history(code) == source.history(code), code
        assert (await fetch(replay, CODES)).equals(captured)


async def test_histories_of_rows_are_paged_like_generated_ones() -> None:
    rows = [
        UsRow(1777521600 - 86400 * 15 * i, None, 100 + i, None, None, None, 1.5, None)
        for i in range(23)
    ]
    async with (
        OpenDSimulator(quota=None, histories={"US.ZZZ": rows}) as sim,
        connected(sim) as raw,
    ):
        assert "US.ZZZ" in sim.codes
        pages = await raw.walk("US.ZZZ", num=5)
        assert [as_row(i) for page in pages for i in items(page)] == rows
        assert len(pages) == 5


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"timestamp": [1]}), r"missing columns \['timestamp_str'"),
        (pd.DataFrame({"timestamp": [1], "shares_shrot": [1]}), r"unknown columns \['shares_sh"),
        (
            pd.DataFrame(
                {
                    "timestamp": [1.5],
                    "timestamp_str": ["2026-01-02"],
                    "shares_short": [1],
                    "short_percent": [1.0],
                    "avg_daily_share_volume": [1],
                    "days_to_cover": [1.0],
                    "close_price": [1.0],
                    "last_close_price": [1.0],
                }
            ),
            "timestamp 1.5 is not a whole number",
        ),
    ],
    ids=["missing", "unknown", "fraction"],
)
def test_bad_frames_are_refused_by_name(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenDSimulator(histories={"US.X": frame})


def test_bad_histories_are_refused() -> None:
    with pytest.raises(TypeError, match="histories must map codes"):
        OpenDSimulator(histories=[("US.X", [])])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DataFrame or a sequence"):
        OpenDSimulator(histories={"US.X": 5})
    with pytest.raises(TypeError, match="UsRow"):
        OpenDSimulator(histories={"US.X": [HkRow(1, "x", 1.0, 1.0, 1, 1.0)]})
    with pytest.raises(ValueError, match="SH"):
        OpenDSimulator(histories={"SH.600519": []})


@pytest.fixture(scope="module")
def captured() -> pd.DataFrame:
    """A table as ``aiomoomoo short-interest`` writes it: both markets, a code column, gaps."""
    sim = OpenDSimulator(seed=11)
    sim.add_symbol("US.GAPS", rows=[UsRow(1777521600, "2026-04-30", None, 2.5, 9, None, 1.0, 2.0)])
    frames = []
    for code in [*CODES, "US.GAPS"]:
        frame = pd.DataFrame([vars_of(row) for row in sim.history(code)])
        frames.append(frame.assign(code=code))
    with warnings.catch_warnings():
        # pandas 2.2 warns that a later version will keep US.GAPS' all-NA columns' dtypes; the
        # table only feeds a CSV file, where that makes no difference.
        warnings.simplefilter("ignore", FutureWarning)
        table = pd.concat(frames, ignore_index=True)
    return table[["code", *[c for c in table.columns if c != "code"]]]


def vars_of(row: UsRow | HkRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__slots__}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_histories_reads_what_the_cli_writes(
    tmp_path: Path, captured: pd.DataFrame, suffix: str
) -> None:
    path = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        captured.to_csv(path, index=False)
    else:
        captured.to_parquet(path, index=False)
    histories = load_histories(path)
    sim = OpenDSimulator(seed=11)
    assert list(histories) == [*CODES, "US.GAPS"]
    for code in CODES:
        assert histories[code] == sim.history(code), code
    assert histories["US.GAPS"] == [UsRow(1777521600, "2026-04-30", None, 2.5, 9, None, 1.0, 2.0)]


def test_load_histories_refuses_files_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        load_histories(tmp_path / "rows.xlsx")
    no_code = tmp_path / "rows.csv"
    no_code.write_text("timestamp,timestamp_str\n1,2026-01-01\n")
    with pytest.raises(ValueError, match="no code column"):
        load_histories(no_code)
    with pytest.raises(FileNotFoundError):
        load_histories(tmp_path / "missing.csv")


async def test_simulate_data_serves_the_file(tmp_path: Path, captured: pd.DataFrame) -> None:
    path = tmp_path / "rows.csv"
    captured[captured["code"] != "US.AAPL"].to_csv(path, index=False)
    async with simulate("--port", "0", "--no-quota", "--data", str(path)) as (process, host, port):
        async with connected(OpenDSimulator(host, port)) as raw:
            pages = await raw.walk("US.GAPS")
            assert [as_row(i) for page in pages for i in items(page)] == [
                UsRow(1777521600, "2026-04-30", None, 2.5, 9, None, 1.0, 2.0)
            ]
            reference = OpenDSimulator(seed=11)
            pages = await raw.walk("HK.00700", num=50)
            served = [as_row(i) for page in pages for i in items(page)]
            assert served == reference.history("HK.00700")
            # Codes the file does not hold are still generated (here with seed 0).
            page = await raw.short_interest("US.AAPL", num=1)
            assert as_row(page.s2c.usItemList[0]) == OpenDSimulator().history("US.AAPL")[0]
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), START_TIMEOUT)
    assert process.returncode == 0


def test_simulate_data_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("code,timestamp\nUS.X,1\n")
    assert main(["simulate", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"argument --data: cannot serve {path}: US.X: missing columns" in err
