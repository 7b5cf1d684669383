"""``aiomoomoo sync``, ``export`` and ``plot`` in-process against a simulator in a thread: the
universe file, the dry run's arithmetic, the summary, the progress bar, and what is written.
What every table writer shares and the rough edges a newcomer met are in
``test_store_tables.py``."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import ShortInterestStore
from aiomoomoo._security import Security
from aiomoomoo.cli import main
from aiomoomoo.store._write import StoreWriter
from aiomoomoo.testing import OpenDSimulator, SimulatorThread


def sync(simulator: OpenDSimulator, store: Path, *args: str) -> int:
    return main(
        [
            "sync",
            "--port",
            str(simulator.port),
            "--store",
            str(store),
            "--rate-limit",
            "200/1",
            *args,
        ]
    )


def test_a_junk_universe_line_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    universe = tmp_path / "codes.txt"
    universe.write_text("US.AAPL\n\n# a comment\nHK.00700\nApple Inc\nUS.TSLA\n")
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, tmp_path / "s.db", "--universe", str(universe)) == 2
        assert sim.stats.connections == sim.stats.requests == 0
    err = capsys.readouterr().err
    assert f"{universe}:5: 'Apple Inc' is not a code" in err
    universe.write_text("US.AAPL\n US.AAPL \n")
    assert main(["sync", "--store", str(tmp_path / "s.db"), "--universe", str(universe)]) == 2
    assert "codes.txt:2: US.AAPL is listed twice (first on line 1)" in capsys.readouterr().err


def test_sync_a_csv_universe_then_dry_run_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    universe = tmp_path / "codes.csv"
    universe.write_text('name,code\n"Apple, Inc.",US.AAPL\nTencent,HK.00700\n')
    store = tmp_path / "s.db"
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, store, "--universe", str(universe), "US.TSLA") == 0
        sent = sim.stats.requests
        out = capsys.readouterr().out
        assert f"requests sent: {sent}; codes synced: 3, skipped as not due: 0, failed: 0" in out
        assert sync(sim, store, "US.AAPL", "HK.00700", "US.TSLA", "--full", "--dry-run") == 0
        assert sim.stats.requests == sent
    pages = sum(math.ceil(len(sim.history(c)) / 50) for c in ("US.AAPL", "HK.00700", "US.TSLA"))
    assert pages == sent
    out = capsys.readouterr().out
    assert "codes: 3, due: 3, not due: 0" in out
    assert f"requests expected: {pages}\n" in out
    least = math.ceil(pages / 200) - 1
    assert least == 0
    assert "least wall time at 200/1s: 0.0 s" in out
    main(["sync", "--store", str(store), "US.MSFT", "--dry-run", "--rate-limit", "3/30"])
    out = capsys.readouterr().out
    # Never synced: guessed from the complete US codes stored (4 pages each), 4 at 3/30 s.
    assert "requests expected: 4 (1 never synced" in out
    assert "least wall time at 3/30s: 30 s" in out

    assert main(["export", "--store", str(store), "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(frame["code"].unique()) == ["HK.00700", "US.AAPL", "US.TSLA"]
    assert len(frame) == sum(len(sim.history(c)) for c in ("US.AAPL", "HK.00700", "US.TSLA"))
    assert main(["export", "--store", str(store), "--latest", "US.AAPL", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["code"] for row in rows] == ["US.AAPL"]
    assert rows[0]["timestamp_str"] == sim.history("US.AAPL")[0].timestamp_str
    assert "aggregated_short" not in rows[0]
    target = tmp_path / "out.parquet"
    args = ["export", "--store", str(store), "HK.00700", "--since", "2026-01-01"]
    assert main([*args, "--format", "parquet", "-o", str(target)]) == 0
    parquet = pd.read_parquet(target)
    assert (parquet["timestamp_str"] >= "2026-01-01").all()
    with ShortInterestStore(store) as opened:
        expected = opened.history("HK.00700", since="2026-01-01")
    assert len(parquet) == len(expected) > 0
    assert main([*args, "--as-of", "2000-01-01T00:00Z"]) == 0
    assert "(no rows)" in capsys.readouterr().out
    assert main(["export", "--store", str(store), "US.NVDA"]) == 2
    assert "US.NVDA is not in the store" in capsys.readouterr().err
    assert main(["export", "--store", str(tmp_path / "none.db")]) == 2


def test_the_summary_says_per_market_what_is_published_and_every_code_asks_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.db"
    codes = ("US.AAPL", "US.TSLA", "US.NVDA", "US.SPY", "HK.00700")
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, store, *codes) == 0
        out = capsys.readouterr().out
        # Its rows end on 2026-04-30; the next publications can be out from 05-25 and 05-14.
        expected = "newest published 2026-04-30; not probed; next publication expected from"
        assert f"US: {expected} 2026-05-25\n" in out
        assert f"HK: {expected} 2026-05-14\n" in out
        # Today (after those days) nothing newer is out: three US probes and the HK code.
        assert sync(sim, store, *codes, "--dry-run") == 0
        out = capsys.readouterr().out
        assert "codes: 5, due: 4, not due: 1\nrequests expected: 4\n" in out
        assert "  and up to 1 more if the probes find a new publication" in out
        probing = "probing US.AAPL, US.TSLA, US.NVDA"
        assert f"US: newest published 2026-04-30, next expected from 2026-05-25; {probing}" in out
        sent = sim.stats.requests
        assert sync(sim, store, *codes) == 0
        assert sim.stats.requests - sent == 4
        out = capsys.readouterr().out
        assert "US: newest published 2026-04-30; 3 probes found nothing new; next" in out
        assert "HK: newest published 2026-04-30; 1 probe found nothing new; next" in out
        sent = sim.stats.requests
        assert sync(sim, store, *codes, "--every-code") == 0
        assert sim.stats.requests - sent == len(codes)
        assert "US: newest published 2026-04-30; not probed;" in capsys.readouterr().out


def test_plot_draws_one_panel_per_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    store = tmp_path / "s.db"
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, store, "US.AAPL", "HK.00700") == 0
    chart = tmp_path / "chart.png"
    assert main(["plot", "--store", str(store), "US.AAPL", "HK.00700", "-o", str(chart)]) == 0
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert main(["plot", "--store", str(store), "US.NVDA", "-o", str(chart)]) == 2
    assert "US.NVDA is not in the store" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_codes_requests_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rich")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, tmp_path / "s.db", "US.AAPL", "HK.00700") == 0
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "2/2 codes" in shown
    # Every request the sync sent, counted from the client's limiter, and the rows stored.
    sent = sim.stats.requests
    rows = len(sim.history("US.AAPL")) + len(sim.history("HK.00700"))
    assert f"{sent} requests sent · {rows:,} rows" in shown
    assert f"requests sent: {sent};" in capsys.readouterr().out


def test_wire_text_cannot_drive_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.db"
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, store, "US.AAPL") == 0
    capsys.readouterr()
    # A hostile gateway's date string, as a sync would have stored it.
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute(
            "UPDATE versions SET timestamp_str = ? WHERE date = (SELECT MIN(date) FROM versions)",
            ("2026-04-30\x1b]0;owned\x07\x1b[2J",),
        )
    db.close()
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert main(["export", "--store", str(store), "US.AAPL"]) == 0
    shown = terminal.getvalue()
    assert "2026-04-30\\x1b]0;owned\\x07\\x1b[2J" in shown
    # export on a terminal is rich's view: its own styling may stay, none of the gateway's.
    assert "\x1b]" not in shown
    assert "\x1b[2J" not in shown
    assert "\x07" not in shown
    # Only the cells are escaped: the table keeps its lines.
    assert shown.count("\n") > 2


def test_a_code_that_fails_for_any_reason_is_named_and_the_others_are_synced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store_page = StoreWriter.store_page

    def failing(self: StoreWriter, security: Security, *args: Any) -> Any:
        if security.code == "US.AAPL":
            raise OSError(75, "Value too large for defined data type")
        return store_page(self, security, *args)

    monkeypatch.setattr(StoreWriter, "store_page", failing)
    with SimulatorThread(quota=None) as sim:
        assert sync(sim, tmp_path / "s.db", "US.AAPL", "HK.00700") == 1
    captured = capsys.readouterr()
    assert "codes synced: 1, skipped as not due: 0, failed: 1" in captured.out
    assert "US.AAPL: OSError: [Errno 75] Value too large for defined data type" in captured.err
    assert "Traceback" not in captured.err
