"""``aiomoomoo screen`` and ``changes`` over a store written without a network, and the top
movers a sync's summary names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from aiomoomoo import ShortInterestStore
from aiomoomoo.cli import main
from aiomoomoo.testing import SimulatorThread

from ..store._stores import hk, us, write

NEW, OLD = "2026-04-30", "2026-04-15"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    write(
        path,
        {
            "US.AAPL": [us(NEW, 150, 5.0, 10.0), us(OLD, 100)],
            "US.MSFT": [us(NEW, 50, 1.0, 2.0), us(OLD, 100)],
            "US.NVDA": [us(NEW, 70, 9.0, 0.5)],
            "HK.00700": [hk(NEW, 600, 0.8), hk(OLD, 500)],
        },
    )
    return path


def csv_of(capsys: pytest.CaptureFixture[str]) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_screen_filters_sorts_and_cuts(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["screen", "--store", str(store), "--format", "csv"]
    assert main([*args, "--market", "US", "--min-days-to-cover", "1", "--by", "days_to_cover"]) == 0
    assert csv_of(capsys)["code"].tolist() == ["US.NVDA", "US.AAPL", "US.MSFT"]
    assert main([*args, "--min-short-percent", "0.6", "--top", "2", "--by", "code"]) == 0
    assert csv_of(capsys)["code"].tolist() == ["US.MSFT", "US.AAPL"]
    assert main([*args, "--min-change-percent", "10", "--by", "change_percent"]) == 0
    frame = csv_of(capsys)
    assert frame["code"].tolist() == ["US.AAPL", "HK.00700"]
    assert frame.columns[0] == "code"
    assert "shares_short_change_percent" in frame.columns
    assert main([*args, "--max-change-percent", "0", "--as-of", "2020-01-01T00:00Z"]) == 0
    assert csv_of(capsys).empty


def test_screen_refuses_what_does_not_apply(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["screen", "--store", str(store)]
    assert main([*args, "--market", "HK", "--min-days-to-cover", "2"]) == 2
    assert "min_days_to_cover does not apply to HK codes" in capsys.readouterr().err
    assert main([*args, "--by", "colour"]) == 2
    assert "by must be one of" in capsys.readouterr().err
    assert main([*args, "--top", "0"]) == 2
    assert "expected a whole number of rows >= 1" in capsys.readouterr().err
    assert main([*args, "--min-change-percent", "lots"]) == 2
    assert "expected a number" in capsys.readouterr().err
    assert main(["screen", "--store", str(store.with_name("none.db"))]) == 2
    assert "no store at" in capsys.readouterr().err


def test_changes_per_market_biggest_moves_first(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["changes", "--store", str(store), "--format", "csv"]
    assert main([*args, "--market", "US"]) == 0
    us_frame = csv_of(capsys)
    assert us_frame["code"].tolist() == ["US.AAPL", "US.MSFT", "US.NVDA"]
    assert us_frame["shares_short_change_percent"].tolist()[:2] == [50.0, -50.0]
    assert main([*args, "--top", "1"]) == 0
    both = csv_of(capsys)
    assert both["code"].tolist() == ["US.AAPL", "HK.00700"]
    assert both["change_percent"].tolist() == [50.0, 20.0]
    out = tmp_path / "changes.json"
    assert main(["changes", "--store", str(store), "--market", "HK", "-o", str(out)]) == 0
    assert json.loads(out.read_text())[0]["aggregated_short_change"] == 100
    assert "wrote 1 row to" in capsys.readouterr().err


def test_a_sync_that_stored_rows_names_the_top_movers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.db"
    codes = ["US.AAPL", "US.TSLA", "HK.00700"]
    with SimulatorThread(quota=None) as sim:
        args = ["sync", "--port", str(sim.port), "--store", str(store), "--rate-limit", "200/1"]
        assert main([*args, *codes]) == 0
        first = capsys.readouterr().out
        assert main([*args, *codes]) == 0
        again = capsys.readouterr().out
    with ShortInterestStore(store) as opened:
        us_top = opened.changes("US")["code"].tolist()
        hk_top = opened.changes("HK")["code"].tolist()
    lines = [line for line in first.splitlines() if "movers" in line]
    assert lines[0].startswith(f"US movers: {us_top[0]} ")
    assert us_top[1] in lines[0]
    assert lines[1].startswith(f"HK movers: {hk_top[0]} ")
    assert "movers" not in again  # nothing new stored, nothing moved


@pytest.mark.parametrize("command", ["screen", "changes"])
def test_a_file_that_is_no_store_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    for path, meaning in ((junk, "not an SQLite file"), (tmp_path, "is a directory")):
        assert main([command, "--store", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"aiomoomoo {command}: ")
        assert meaning in err


def test_a_ranking_on_a_narrow_terminal_keeps_its_order_and_whole_numbers() -> None:
    pytest.importorskip("rich")
    from rich.console import Console

    from aiomoomoo.cli._terminal import show_ranked

    frame = pd.DataFrame(
        {
            "code": ["US.TSLA", "HK.00700", "US.AAPL"],
            "timestamp_str": ["2026-04-30"] * 3,
            "shares_short": pd.array([81_200_000, None, 111_000_000], dtype="Int64"),
            "close_price": [292.0, 467.8, 271.25],
            "shares_short_change_percent": [-10.82, 7.27, -2.99],
        }
    )
    out = io.StringIO()
    show_ranked(frame, Console(file=out, width=40, markup=False), title="US and HK changes")
    text = out.getvalue()
    # The given order, not regrouped by market; the percent change right after the date.
    assert [line.split()[0] for line in text.splitlines() if line[:3] in ("US.", "HK.")] == [
        "US.TSLA",
        "HK.00700",
        "US.AAPL",
    ]
    assert "-10.82" in text
    assert "7.27" in text
    # Columns that do not fit are left out whole and named, never cut.
    assert "81,200,000" not in text
    said = " ".join(text.split())
    assert "Left out for the terminal's width: shares short, close price" in said
    wide = io.StringIO()
    show_ranked(frame, Console(file=wide, width=200, markup=False), title="US and HK changes")
    assert "81,200,000" in wide.getvalue()
    assert "271.25" in wide.getvalue()
    assert "292.00" in wide.getvalue()  # one number of decimals per column
