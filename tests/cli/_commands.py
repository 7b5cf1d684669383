"""What the command-line tests share: running ``python -m aiomoomoo`` as processes side by
side, the data a command must write for some codes (from the simulator's own histories), and a
port nothing listens on."""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aiomoomoo import HK_COLUMNS, US_COLUMNS
from aiomoomoo.testing import OpenDSimulator

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 30.0
MIXED_COLUMNS = ["code", *US_COLUMNS, "aggregated_short", "aggregated_short_ratio"]
#: Unstarted, so safe to read from the test thread: same seed, same histories as any simulator.
REFERENCE = OpenDSimulator()


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiomoomoo", *args]


def run_all(
    *commands: Sequence[str], cwd: Path | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``aiomoomoo`` once per argument list, all at the same time; wait for every one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    processes = [
        (
            args,
            subprocess.Popen(
                command(*args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                cwd=cwd,
            ),
        )
        for args in commands
    ]
    done: list[subprocess.CompletedProcess[str]] = []
    try:
        for args, process in processes:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
            done.append(subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr))
    finally:
        # A command that hangs must not outlive the test, and the pipes of every command not
        # read to the end (the hung one, those after it) must be closed too.
        for _, process in processes[len(done) :]:
            process.kill()
            process.communicate()
    for result in done:
        assert "Traceback" not in result.stderr, f"{result.args}: {result.stderr}"
    return done


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_all(args, cwd=cwd)[0]


def expected(codes: Sequence[str], since: str | None = None) -> pd.DataFrame:
    """What the command must write for ``codes``, from the simulator's histories."""
    records = [
        {"code": code, **dataclasses.asdict(row)}
        for code in codes
        for row in REFERENCE.history(code)
        if since is None or str(row.timestamp_str) >= since
    ]
    markets = {code.partition(".")[0] for code in codes}
    if markets == {"US"}:
        columns = ["code", *US_COLUMNS]
    elif markets == {"HK"}:
        columns = ["code", *HK_COLUMNS]
    else:
        columns = MIXED_COLUMNS
    return pd.DataFrame(records).reindex(columns=columns)


def assert_same_data(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want, check_dtype=False, check_exact=True
    )


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype={"code": str, "timestamp_str": str})


def at(sim: OpenDSimulator) -> tuple[str, ...]:
    return ("--host", sim.host, "--port", str(sim.port))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
