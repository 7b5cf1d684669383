"""``aiomoomoo short-interest`` end to end: the command as a subprocess against ``--demo`` and
against a simulator in a thread of this process; its usage errors in-process.

Each subprocess costs about half a second of imports, so commands that do not depend on each
other run side by side (:func:`run_all`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import __version__
from aiomoomoo.cli import main
from aiomoomoo.testing import OpenDSimulator

from . import _commands
from ._commands import (
    MIXED_COLUMNS,
    REFERENCE,
    ROOT,
    assert_same_data,
    at,
    closed_port,
    expected,
    read_csv,
    run,
    run_all,
)

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
    assert result.stdout == ""
    got = read_csv((tmp_path / "short.csv").read_text(encoding="utf-8"))
    want = expected(codes, since="2025-06-01")
    assert result.stderr == f"wrote {len(want):,} rows to short.csv\n"
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
    assert result.stdout == ""
    assert result.stderr == f"wrote {len(expected(codes)):,} rows to {path}\n"
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
    # The client's own checks, as usage errors rather than tracebacks.
    "argument --port: port must be from 1 to 65535, got 0": ["US.AAPL", "--port", "0"],
    "argument --port: port 'x' is not a whole number": ["US.AAPL", "--port", "x"],
    "argument --host: host must not be empty": ["US.AAPL", "--host", ""],
    "argument --rate-limit: rate limit '0/30': max_requests must be at least 1, got 0": [
        "US.AAPL",
        "--rate-limit",
        "0/30",
    ],
    "argument --rate-limit: rate limit '3/0': period must be a positive number": [
        "US.AAPL",
        "--rate-limit",
        "3/0",
    ],
    "argument --concurrency: '0' is not a whole number of at least 1": [
        "US.AAPL",
        "--concurrency",
        "0",
    ],
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
        "argument --port: port must be from 1 to 65535, got 0",
    ]
    results = run_all(*(["short-interest", "--port", port, *USAGE_ERRORS[m]] for m in chosen))
    for message, result in zip(chosen, results, strict=True):
        assert result.returncode == 2, f"{result.args}: {result.stderr}"
        assert message in result.stderr
        assert result.stdout == ""


def test_the_simulator_is_loaded_only_for_demo(opend: OpenDSimulator) -> None:
    probe = (
        "import sys\n"
        "from aiomoomoo.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('testing loaded' if 'aiomoomoo.testing' in sys.modules else 'testing not loaded')\n"
        "raise SystemExit(status)\n"
    )
    fetch = ["short-interest", *at(opend), "US.AAPL", "--format", "csv"]
    runs = [["short-interest", "--help"], fetch, ["short-interest", "--demo", "US.AAPL"]]
    results = [
        subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            check=False,
        )
        for args in runs
    ]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    last_lines = [r.stdout.splitlines()[-1] for r in results]
    assert last_lines == ["testing not loaded", "testing not loaded", "testing loaded"]


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
    written = expected(["US.AAPL", "HK.02800"])
    assert result.stderr.splitlines() == [
        "aiomoomoo short-interest: US.NOPE: OpenD refused proto 3249: unknown stock "
        "(retType=-1, errCode=2)",
        f"wrote {len(written):,} rows to {path}",
    ]
    assert_same_data(read_csv(path.read_text(encoding="utf-8")), written)


# -- the helpers themselves -----------------------------------------------------------------


def test_a_command_that_hangs_is_killed_not_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[str]] = []
    popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        process: subprocess.Popen[str] = popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", recording)
    monkeypatch.setattr(_commands, "RUN_TIMEOUT", 1.0)
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
