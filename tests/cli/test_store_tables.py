"""``export``, ``sync`` and ``plot`` behave as every table writer does, and the rough edges a
newcomer met are gone: the format from ``-o``, one column order, the terminal view, the line
saying what was written, Ctrl-C, the dry run, ``--as-of`` and a store with nothing to draw."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiomoomoo import US_COLUMNS, ShortInterestStore
from aiomoomoo.cli import main
from aiomoomoo.cli._progress import ProgressDisplay
from aiomoomoo.testing import OpenDSimulator, SimulatorThread

from ._commands import closed_port

CODES = ("US.AAPL", "HK.00700", "US.TSLA")
STORE_COLUMNS = [
    "shares_short_previous",
    "shares_short_change",
    "shares_short_change_percent",
    "aggregated_short_previous",
    "aggregated_short_change",
    "aggregated_short_change_percent",
    "first_seen",
    "last_seen",
]
MIXED = ["code", *US_COLUMNS, "aggregated_short", "aggregated_short_ratio", *STORE_COLUMNS]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def sync(simulator: OpenDSimulator, store: Path, *args: str) -> int:
    where = ["--port", str(simulator.port), "--store", str(store), "--rate-limit", "200/1"]
    return main(["sync", *where, *args])


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenDSimulator]:
    with SimulatorThread(quota=None) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def store(sim: OpenDSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store synced with `CODES`, read (never written) by the tests that use it."""
    path = tmp_path_factory.mktemp("store") / "s.db"
    assert sync(sim, path, *CODES) == 0
    return path


def rows_stored(store: Path) -> int:
    with ShortInterestStore(store) as opened:
        return sum(len(opened.history(code)) for code in opened.codes())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1


# -- export writes as short-interest does ------------------------------------------------------


def test_export_takes_the_format_from_the_extension_and_says_what_it_wrote(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    total = rows_stored(store)
    for name in ("t.csv", "t.json", "t.parquet", "t.txt"):
        assert main(["export", "--store", str(store), "-o", str(tmp_path / name)]) == 0
        out, err = capsys.readouterr()
        assert out == ""
        assert err == f"wrote {total:,} rows to {tmp_path / name}\n"
    assert len(pd.read_csv(tmp_path / "t.csv")) == total
    assert len(json.loads((tmp_path / "t.json").read_text())) == total
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == total
    assert (tmp_path / "t.txt").read_text().split()[0] == "code"


def test_an_unknown_extension_is_a_usage_error_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not even the missing store is looked at.
    missing = tmp_path / "none.db"
    assert main(["export", "--store", str(missing), "-o", str(tmp_path / "t.xlsx")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"aiomoomoo export: cannot tell the format of '{tmp_path / 't.xlsx'}' from its "
        "extension (.csv, .json, .parquet, .pq, .txt); add --format"
    ]
    assert not (tmp_path / "t.xlsx").exists()
    assert not missing.exists()


def test_one_column_order_whatever_the_code_order_and_with_latest(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    orders = []
    for args in (
        ["US.AAPL", "HK.00700"],
        ["HK.00700", "US.AAPL"],
        ["HK.00700", "US.AAPL", "--latest"],
        ["--latest"],
    ):
        assert main(["export", "--store", str(store), *args, "--format", "csv"]) == 0
        orders.append(list(pd.read_csv(io.StringIO(capsys.readouterr().out)).columns))
    assert orders == [MIXED] * 4
    assert main(["export", "--store", str(store), "HK.00700", "--format", "csv"]) == 0
    hk = list(pd.read_csv(io.StringIO(capsys.readouterr().out)).columns)
    assert hk[:3] == ["code", "timestamp", "timestamp_str"]
    assert hk[-2:] == ["first_seen", "last_seen"]
    assert "shares_short" not in hk


def test_export_on_a_terminal_gets_the_compact_view_per_market(
    store: Path, sim: OpenDSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((100, 24)))
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["export", "--store", str(store)]) == 0
    text = " ".join(ANSI.sub("", terminal.getvalue()).split())
    assert "US short interest" in text
    assert "HK short interest" in text
    rows = sim.history("US.AAPL")
    assert f"US.AAPL: {len(rows)} rows" in text
    assert "newest 5 shown" in text
    assert str(rows[5].timestamp_str) not in text.split("US.AAPL:")[0]


def test_as_of_without_a_timezone_is_refused_in_cli_words(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--store", str(store), "--as-of", "2026-05-01"]) == 2
    err = capsys.readouterr().err
    assert "--as-of '2026-05-01' needs a timezone, e.g. 2026-05-01T00:00Z" in err
    assert "datetime" not in err
    assert main(["export", "--store", str(store), "--as-of", "soon"]) == 2
    assert "--as-of 'soon' is not an ISO time" in capsys.readouterr().err


# -- sync --------------------------------------------------------------------------------------


def test_a_dry_run_creates_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = tmp_path / "fresh.db"
    assert main(["sync", "--store", str(fresh), "US.AAPL", "HK.00700", "--dry-run"]) == 0
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert "codes: 2, due: 2, not due: 0" in out
    assert "(2 never synced, guessed from the store or typical lengths)" in out


def test_ctrl_c_during_a_sync_says_what_was_kept(
    sim: OpenDSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("rich")
    synced = ProgressDisplay.synced
    pages = 0

    def interrupted(self: ProgressDisplay, progress: object) -> None:
        nonlocal pages
        synced(self, progress)  # type: ignore[arg-type]
        pages += 1
        if pages == 3:
            # As Ctrl-C does: asyncio.run cancels the command, which cleans up, then raises
            # KeyboardInterrupt.
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ProgressDisplay, "synced", interrupted)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    path = tmp_path / "s.db"
    assert sync(sim, path, "US.AAPL", "HK.00700") == 130
    shown = ANSI.sub("", terminal.getvalue())
    monkeypatch.undo()
    kept = rows_stored(path)
    assert 0 < kept < len(sim.history("US.AAPL")) + len(sim.history("HK.00700"))
    assert shown.splitlines()[-1] == (
        f"aiomoomoo sync: interrupted: {kept:,} rows stored, run again to resume"
    )
    assert capsys.readouterr().out == ""


def test_an_unreachable_opend_names_sync_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    assert main(["sync", "--port", str(port), "--store", str(tmp_path / "s.db"), "US.AAPL"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"aiomoomoo sync: cannot connect to OpenD at 127.0.0.1:{port}: ")
    assert "`aiomoomoo sync --demo`" in err
    assert "short-interest" not in err


def test_sync_demo_needs_no_opend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    assert main(["sync", "--demo", "--store", str(path), "US.AAPL", "--rate-limit", "30/1"]) == 0
    assert "codes synced: 1," in capsys.readouterr().out
    assert rows_stored(path) == len(OpenDSimulator().history("US.AAPL"))


# -- plot --------------------------------------------------------------------------------------


def test_plot_with_no_rows_in_range_is_an_error(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "chart.png"
    args = ["plot", "--store", str(store), "US.AAPL", "--since", "2030-01-01", "-o", str(chart)]
    assert main(args) == 1
    assert capsys.readouterr().err.splitlines() == [
        "aiomoomoo plot: no rows of US.AAPL since 2030-01-01 in the store: nothing to draw"
    ]
    assert not chart.exists()
    assert main(["plot", "--store", str(store), "US.AAPL", "HK.00700", "-o", str(chart)]) == 0
    assert capsys.readouterr().err == f"wrote a chart of 2 codes to {chart}\n"


def test_the_charts_axes_show_units_and_a_legend(store: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from aiomoomoo.cli._plot import draw

    with ShortInterestStore(store) as opened:
        frames = {code: opened.history(code) for code in ("US.AAPL", "HK.00700")}
    figure = draw(frames, tmp_path / "chart.png")
    us, hk = figure.axes[:2]  # the panels; their twins follow
    assert us.get_ylabel() == "shares short (millions)"
    assert hk.get_ylabel() == "aggregated short (millions of shares)"
    for panel in (us, hk):
        legend = panel.get_legend()
        assert legend is not None
        assert len(legend.get_texts()) == 3
    for axis in figure.axes:
        assert axis.yaxis.get_offset_text().get_text() == ""
        labels = [t.get_text() for t in axis.get_yticklabels()]
        assert not any("e" in label.lower() for label in labels), labels
    # The plotted values are in millions: AAPL's ~1e8 shares short read as ~100.
    top = max(float(np.nanmax(np.asarray(line.get_ydata()))) for line in us.get_lines())
    assert 10 < top < 1_000


def test_sqlite_is_not_touched_by_a_dry_run_of_an_existing_store(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store.stat().st_mtime_ns
    assert main(["sync", "--store", str(store), *CODES, "--dry-run"]) == 0
    assert "codes: 3" in capsys.readouterr().out
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM codes").fetchone() == (3,)
    assert store.stat().st_mtime_ns == before


def test_a_dry_run_after_an_interrupted_sync_expects_what_the_next_sync_sends(
    sim: OpenDSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("rich")
    synced = ProgressDisplay.synced
    pages = 0

    def interrupted(self: ProgressDisplay, progress: object) -> None:
        nonlocal pages
        synced(self, progress)  # type: ignore[arg-type]
        pages += 1
        if pages == 2:
            signal.raise_signal(signal.SIGINT)

    path = tmp_path / "s.db"
    with monkeypatch.context() as patch:
        patch.setattr(ProgressDisplay, "synced", interrupted)
        patch.setattr(sys, "stderr", Terminal())
        assert sync(sim, path, "US.AAPL") == 130
    capsys.readouterr()
    assert sync(sim, path, "US.AAPL", "--dry-run") == 0
    expected = re.search(r"requests expected: (\d+)", capsys.readouterr().out)
    assert expected is not None
    before = sim.stats.requests
    assert sync(sim, path, "US.AAPL") == 0
    assert f"requests sent: {sim.stats.requests - before};" in capsys.readouterr().out
    assert int(expected[1]) == sim.stats.requests - before
