"""The store commands and a file that cannot be used as asked, or another program writing it:
each ends in one line and a non-zero exit, never a traceback; reading waits for no writer, a
sync waits at most ``--wait`` and answers Ctrl-C at once; a full disk keeps what was committed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiomoomoo.cli import main
from aiomoomoo.store import _schema
from aiomoomoo.testing import OpenDSimulator, SimulatorThread

from ..store._files import damage_versions, room_for, store_with_rows, write_transaction
from ._commands import ROOT, RUN_TIMEOUT

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenDSimulator]:
    with SimulatorThread(quota=None) as simulator:
        yield simulator


def sync(port: int, store: Path, *args: str) -> int:
    return main(
        ["sync", "--port", str(port), "--store", str(store), "--rate-limit", "200/1", *args]
    )


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def versions(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM versions").fetchone()
    return int(count)


@pytest.mark.parametrize("command", ["export", "plot"])
def test_reading_a_file_that_is_no_store_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = tmp_path / "codes.txt"
    text.write_text("US.AAPL\n" * 200)
    chart = ["-o", str(tmp_path / "chart.png")] if command == "plot" else []
    for path, meaning in ((text, "not an SQLite file"), (tmp_path, "is a directory")):
        assert main([command, "--store", str(path), "US.AAPL", *chart]) == 1
        assert meaning in one_line(capsys)


@pytest.mark.parametrize("command", ["export", "plot"])
def test_reading_does_not_wait_for_a_write_transaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    if command == "plot":
        pytest.importorskip("matplotlib")
    store = store_with_rows(tmp_path / "s.db")
    chart = (
        ["-o", str(tmp_path / "chart.png")]
        if command == "plot"
        else ["-o", str(tmp_path / "out.csv")]
    )
    # Before, both took the write lock: 30 s of waiting, then a traceback.
    with write_transaction(store):
        assert main([command, "--store", str(store), "US.AAPL", *chart]) == 0


@pytest.mark.parametrize("latest", [[], ["--latest"]])
def test_an_export_of_a_store_damaged_beyond_its_header_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], latest: list[str]
) -> None:
    store = store_with_rows(tmp_path / "s.db")
    damage_versions(store)
    out = tmp_path / "rows.csv"
    assert main(["export", "--store", str(store), "-o", str(out), *latest]) == 1
    assert f"the store {store} is damaged" in one_line(capsys)
    assert not out.exists()


def test_a_sync_on_a_store_damaged_beyond_its_header_says_so_in_one_line(
    sim: OpenDSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_with_rows(tmp_path / "s.db")
    damage_versions(store)
    # Planning reads the per-code counts; storing the first page meets the damaged rows.
    assert sync(sim.port, store, "US.AAPL") == 1
    assert f"the store {store} is damaged" in one_line(capsys)


def test_a_full_disk_ends_the_sync_in_one_line_and_keeps_what_was_committed(
    sim: OpenDSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "s.db"
    # A file that may grow only 4 pages: SQLite answers as for a full disk (SQLITE_FULL).
    monkeypatch.setattr(_schema, "PRAGMAS", (*_schema.PRAGMAS, room_for(4, tmp_path)))
    assert sync(sim.port, store, "US.AAPL") == 1
    line = one_line(capsys)
    assert f"the disk holding the store {store} is full" in line
    kept = versions(store)
    assert 0 < kept < len(sim.history("US.AAPL"))
    monkeypatch.undo()
    # What was committed is whole: the next sync continues and ends with the whole history.
    assert sync(sim.port, store, "US.AAPL") == 0
    assert versions(store) == len(sim.history("US.AAPL"))


def test_a_sync_waits_at_most_wait_for_another_program_and_says_why(
    sim: OpenDSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_with_rows(tmp_path / "s.db")
    with write_transaction(store):
        assert sync(sim.port, store, "US.AAPL", "--wait", "0.2") == 1
    line = one_line(capsys)
    assert "another program holds a write transaction" in line
    assert "waited 0.2 s" in line


def test_ctrl_c_ends_a_syncs_wait_for_another_program_at_once(tmp_path: Path) -> None:
    store = store_with_rows(tmp_path / "s.db")
    # The child answers SIGINT as at a terminal, even when the test runner ignores it.
    child_code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from aiomoomoo.cli import main; raise SystemExit(main(sys.argv[1:]))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # A wait far longer than the test allows: only Ctrl-C can end it in time.
    args = ["sync", "--demo", "--full", "--store", str(store), "--wait", "3600", "US.AAPL"]
    with write_transaction(store):
        child = subprocess.Popen(
            [sys.executable, "-c", child_code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            # The sync has its lock once it has opened the store; then its first write waits.
            lock = store.with_name("s.db.lock")
            deadline = time.monotonic() + RUN_TIMEOUT
            while not lock.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=RUN_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert "Traceback" not in stderr
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr.splitlines()[-1]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes read-only files"
)
def test_a_read_only_store_is_exported_and_not_synced(
    sim: OpenDSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_with_rows(tmp_path / "s.db")
    store.chmod(0o444)
    assert main(["export", "--store", str(store), "-o", str(tmp_path / "out.csv")]) == 0
    capsys.readouterr()
    assert sync(sim.port, store, "US.AAPL", "--full") == 1
    assert f"the store {store} is read-only" in one_line(capsys)
