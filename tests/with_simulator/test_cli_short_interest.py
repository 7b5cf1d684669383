"""``aiomoomoo short-interest`` end to end: the command as a subprocess against ``--demo`` and
against a simulator in a thread of this process, plus the progress line in-process.

Each subprocess costs about half a second of imports, so commands that do not depend on each
other run side by side (:func:`run_all`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS, US_COLUMNS, __version__
from aiomoomoo.cli import main
from aiomoomoo.testing import OpenDSimulator, SimulatorThread

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


@pytest.fixture(scope="module")
def opend() -> Iterator[OpenDSimulator]:
    """A simulator without a quota in a background thread, standing in for a running OpenD."""
    with SimulatorThread(quota=None) as simulator:
        yield simulator


def at(sim: OpenDSimulator) -> tuple[str, ...]:
    return ("--host", sim.host, "--port", str(sim.port))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- help and version -----------------------------------------------------------------------


def test_help_and_version() -> None:
    top, sub, version = run_all(["--help"], ["short-interest", "--help"], ["--version"])
    assert top.returncode == sub.returncode == version.returncode == 0
    assert "short-interest" in top.stdout
    assert "simulate" in top.stdout
    for option in ("--since", "--num", "--format", "--output", "--demo", "--host", "--port"):
        assert option in sub.stdout
    assert "US.AAPL HK.00700" in sub.stdout
    assert version.stdout == f"aiomoomoo {__version__}\n"
    assert top.stderr == sub.stderr == version.stderr == ""


# -- success --------------------------------------------------------------------------------


def test_demo_needs_no_opend_and_prints_no_progress_when_stderr_is_a_pipe() -> None:
    table, csv = run_all(
        ["short-interest", "--demo", "US.AAPL", "HK.00700"],
        ["short-interest", "--demo", "--port", str(closed_port()), "HK.09988", "--format", "csv"],
    )
    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split() == MIXED_COLUMNS
    rows = expected(["US.AAPL", "HK.00700"])
    assert len(lines) == 1 + len(rows)
    assert lines[1].split()[:3] == ["US.AAPL", str(rows["timestamp"][0]), rows["timestamp_str"][0]]
    assert lines[-1].split()[0] == "HK.00700"
    assert csv.returncode == 0, csv.stderr
    assert csv.stderr == ""
    assert_same_data(read_csv(csv.stdout), expected(["HK.09988"]))


def test_csv_and_json_hold_the_simulators_values(opend: OpenDSimulator) -> None:
    codes = ["HK.00700", "US.AAPL", "US.BRK.B"]
    csv, as_json = run_all(
        ["short-interest", *at(opend), *codes, "--format", "csv"],
        ["short-interest", *at(opend), *codes, "--format", "json"],
    )
    assert csv.returncode == as_json.returncode == 0, csv.stderr + as_json.stderr
    assert csv.stderr == as_json.stderr == ""
    want = expected(codes)
    assert_same_data(read_csv(csv.stdout), want)
    records = json.loads(as_json.stdout)
    assert records[0]["code"] == "HK.00700"
    assert records[0]["shares_short"] is None  # a US column on an HK row
    assert_same_data(pd.DataFrame(records), want)


def test_output_file_since_and_num(opend: OpenDSimulator, tmp_path: Path) -> None:
    codes = ["US.TSLA", "HK.03690"]
    before = opend.stats.requests
    options = ["--since", "2025-06-01", "--num", "10", "--format", "csv", "--output", "short.csv"]
    result = run("short-interest", *at(opend), *codes, *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    got = read_csv((tmp_path / "short.csv").read_text(encoding="utf-8"))
    want = expected(codes, since="2025-06-01")
    assert_same_data(got, want)
    assert got["timestamp_str"].min() >= "2025-06-01"
    # Pages of 10, each walk ending with the page that reaches past --since.
    pages = sum(len(want[want["code"] == code]) // 10 + 1 for code in codes)
    assert opend.stats.requests - before == pages


def test_num_sets_the_page_size(opend: OpenDSimulator) -> None:
    before = opend.stats.requests
    result = run("short-interest", *at(opend), "US.SPY", "--num", "7", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert_same_data(read_csv(result.stdout), expected(["US.SPY"]))
    assert opend.stats.requests - before == math.ceil(len(REFERENCE.history("US.SPY")) / 7)


def test_since_after_the_last_row_gives_no_rows(opend: OpenDSimulator) -> None:
    result = run("short-interest", *at(opend), "US.AAPL", "--since", "2030-01-01")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "(no rows)\n"


def test_parquet_keeps_the_dtypes(opend: OpenDSimulator, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="parquet output is the optional 'parquet' extra")
    path = tmp_path / "short.parquet"
    codes = ["US.NVDA", "HK.00005"]
    result = run("short-interest", *at(opend), *codes, "--format", "parquet", "-o", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    frame = pd.read_parquet(path)
    assert_same_data(frame, expected(codes))
    assert str(frame["shares_short"].dtype) == "Int64"
    assert str(frame["aggregated_short"].dtype) == "Int64"
    assert str(frame["code"].dtype) == "string"


# -- failures -------------------------------------------------------------------------------


USAGE_ERRORS = {
    "unknown market 'XX'": ["XX.1"],
    "covers only HK and US securities, not SH": ["SH.600000"],
    "date '2025-02-30' is not YYYY-MM-DD": ["US.AAPL", "--since", "2025-02-30"],
    "num '0' is not a whole number from 1 to 50": ["US.AAPL", "--num", "0"],
    "num 'ten' is not a whole number from 1 to 50": ["US.AAPL", "--num", "ten"],
    "--format parquet needs --output FILE": ["US.AAPL", "--format", "parquet"],
    "code 'US.AAPL' is listed twice": ["US.AAPL", "HK.00700", "US.AAPL"],
    "cannot tell the format of 'short.dat' from its extension": ["US.AAPL", "-o", "short.dat"],
    "the following arguments are required: CODE": [],
    "invalid choice: 'xml'": ["US.AAPL", "--format", "xml"],
    "argument --rate-limit: quota '30' is not N/SECONDS": ["US.AAPL", "--rate-limit", "30"],
}


@pytest.mark.parametrize(("message", "args"), USAGE_ERRORS.items(), ids=list(USAGE_ERRORS))
def test_usage_errors_return_2_before_connecting(
    message: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on the port: an attempt to connect would fail with status 1.
    assert main(["short-interest", "--port", str(closed_port()), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err


def test_usage_errors_exit_2_from_the_command() -> None:
    port = str(closed_port())
    chosen = [
        "covers only HK and US securities, not SH",
        "date '2025-02-30' is not YYYY-MM-DD",
        "--format parquet needs --output FILE",
    ]
    results = run_all(*(["short-interest", "--port", port, *USAGE_ERRORS[m]] for m in chosen))
    for message, result in zip(chosen, results, strict=True):
        assert result.returncode == 2, f"{result.args}: {result.stderr}"
        assert message in result.stderr
        assert result.stdout == ""


def test_an_unreachable_opend_is_one_line_saying_what_to_do() -> None:
    result = run("short-interest", "--port", str(closed_port()), "US.AAPL", "HK.00700")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("aiomoomoo short-interest: cannot connect to OpenD")
    assert "Start it" in result.stderr
    assert "--demo" in result.stderr


def test_an_unknown_code_fails_but_the_others_are_written(
    opend: OpenDSimulator, tmp_path: Path
) -> None:
    path = tmp_path / "short.csv"
    codes = ["US.AAPL", "US.NOPE", "HK.02800"]
    result = run("short-interest", *at(opend), *codes, "--format", "csv", "-o", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "aiomoomoo short-interest: US.NOPE: OpenD refused proto 3249: unknown stock "
        "(retType=-1, errCode=2)"
    ]
    assert_same_data(read_csv(path.read_text(encoding="utf-8")), expected(["US.AAPL", "HK.02800"]))


# -- the helpers themselves -----------------------------------------------------------------


def test_a_command_that_hangs_is_killed_not_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[str]] = []
    popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        process: subprocess.Popen[str] = popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", recording)
    monkeypatch.setattr(sys.modules[__name__], "RUN_TIMEOUT", 1.0)
    try:
        # The simulator serves until it is stopped: it outlives any timeout.
        with pytest.raises(subprocess.TimeoutExpired):
            run_all(["simulate", "--port", "0"], ["--version"])
        assert len(started) == 2
        assert [process.poll() is not None for process in started] == [True, True]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.communicate()
