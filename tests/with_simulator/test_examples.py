"""Run every script in examples/ as a user would, against the in-process OpenD simulator.

Each runs in a fresh interpreter with warnings as errors, must exit as documented and print what
the docs say it prints. The checkout comes first on ``sys.path``, so the examples test this tree
whether or not aiomoomoo is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -W error <args>`` from the repository root; return its status and output."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` with ``args``."""
    return run_python(str(EXAMPLES / name), *args)


def test_every_example_is_tested() -> None:
    tested = {
        "quickstart.py",
        "many_symbols.py",
        "trading_bot.py",
        "testing_with_faults.py",
        "dataset.py",
        "blocking_script.py",
        "screens.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_quickstart() -> None:
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    assert "<ShortInterestPage US.AAPL rows=5 next_key=" in result.stdout
    assert "HK.00700: 50 rows, next_key=" in result.stdout
    assert "US.AAPL: 176 rows from 2019-01-15 to 2026-04-30" in result.stdout


def test_quickstart_reports_an_unreachable_opend() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    result = run_example("quickstart.py", "--port", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to OpenD at 127.0.0.1:1")
    assert "Traceback" not in result.stderr


def test_many_symbols() -> None:
    result = run_example("many_symbols.py")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^US\.AAPL +56 +2026-04-30 +2024-01-15$", result.stdout, re.M)
    assert re.search(r"^HK\.00700 +122 +2026-04-30 +2024-01-05$", result.stdout, re.M)
    assert "[7/7]" in result.stderr


def test_many_symbols_keeps_the_data_of_symbols_that_did_not_fail() -> None:
    result = run_example("many_symbols.py", "--since", "2026-01-01", "US.AAPL", "US.NOPE")
    assert result.returncode == 1, result.stderr
    assert "FAILED US.NOPE: OpenD refused proto 3249: unknown stock" in result.stdout
    assert re.search(r"^US\.AAPL +8 +2026-04-30 +2026-01-15$", result.stdout, re.M)


def test_many_symbols_streaming() -> None:
    result = run_example("many_symbols.py", "--stream", "--since", "2026-01-01")
    assert result.returncode == 0, result.stderr
    assert "US.AAPL: 8 rows in 1 pages" in result.stdout
    assert "HK.03690: 18 rows in 1 pages" in result.stdout


def test_trading_bot() -> None:
    codes = ["US.AAPL", "US.TSLA", "HK.09988", "US.NOPE"]
    result = run_example("trading_bot.py", "--interval", "0.2", "--duration", "1", *codes)
    assert result.returncode == 0, result.stderr
    assert "ALERT US.AAPL 2026-04-30: days_to_cover 2.03 >= 2" in result.stdout
    assert "ok    US.TSLA 2026-04-30: days_to_cover 1.48" in result.stdout
    assert "ALERT HK.09988 2026-04-30: aggregated_short_ratio 1.4 >= 1" in result.stdout
    assert "dropping US.NOPE from the watchlist: unknown stock" in result.stderr
    assert "stopped cleanly after" in result.stdout
    # Each row is reported once, however many rounds ran.
    assert result.stdout.count("US.AAPL") == 1


def test_trading_bot_stops_while_waiting_for_the_quota() -> None:
    # Six codes every 0.05 s use the 30-request quota up in about 0.3 s; the bot then waits for
    # the quota and must still stop on time, cleanly.
    result = run_example("trading_bot.py", "--interval", "0.05", "--duration", "1.5")
    assert result.returncode == 0, result.stderr
    assert "stopped cleanly after" in result.stdout


def test_testing_with_faults_as_a_script() -> None:
    result = run_example("testing_with_faults.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 7 passed" in result.stdout


def test_testing_with_faults_under_pytest() -> None:
    result = run_python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "testing_with_faults.py")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_testing_with_faults_says_in_one_line_that_it_needs_pytest() -> None:
    # As after the README's install (pip install '.[cli]'), which brings no pytest.
    hide_pytest = (
        "import runpy, sys; sys.modules['pytest'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = run_python("-c", hide_pytest, str(EXAMPLES / "testing_with_faults.py"))
    assert result.returncode == 1
    assert result.stderr == (
        "examples/testing_with_faults.py is a pytest module and needs pytest: pip install pytest\n"
    )


def test_dataset(tmp_path: Path) -> None:
    store = tmp_path / "short.db"
    result = run_example("dataset.py", "--store", str(store))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "first sync: 16 requests, 3 synced, 0 not due, 731 new rows, 0 revised" in lines
    # Published on the real lags: on 2026-04-30 US rows are out to 04-15, HK ones to 04-17.
    assert "  US: newest published 2026-04-15, not probed, next expected from 2026-05-08" in lines
    # Synced again at once: no US publication can be out; one HK probe finds nothing.
    assert "second sync: 1 requests, 1 synced, 2 not due, 0 new rows, 0 revised" in lines
    hk = "  HK: newest published 2026-04-17, probes found nothing, next expected from 2026-04-30"
    assert hk in lines
    assert "after a publication: 3 requests, 3 synced, 0 not due, 5 new rows, 3 revised" in lines
    us = "  US: newest published 2026-04-30, probes found it, next expected from 2026-05-25"
    assert us in lines
    assert re.search(r"^ *US\.AAPL +176 +2019-01-15 +2026-04-30$", result.stdout, re.M)
    # The revised row now, and as the store knew it before the publication.
    now, before = result.stdout.split("as it was before the publication:")
    assert re.search(r"^ +2026-04-15 +115557014 ", now, re.M)
    assert re.search(r"^ +2026-04-15 +114424793 ", before, re.M)
    assert store.is_file()


def test_dataset_in_a_temporary_store_leaves_nothing_behind(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "dataset.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_blocking_script() -> None:
    result = run_example("blocking_script.py")
    assert result.returncode == 0, result.stderr
    assert "<ShortInterestPage US.AAPL rows=3 next_key=" in result.stdout
    assert "HK.00700: 50 rows, next_key=" in result.stdout
    for code in ("US.AAPL", "US.TSLA", "US.NVDA"):
        assert f"{code}: 8 rows since 2026, newest 2026-04-30" in result.stdout
    assert "HK.09988: 18 rows since 2026, newest 2026-04-30" in result.stdout
    assert result.stdout.endswith("closed: True\n")


@pytest.mark.parametrize("name", ["dataset.py", "blocking_script.py"])
def test_new_examples_report_an_unreachable_opend(name: str) -> None:
    result = run_example(name, "--port", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to OpenD at 127.0.0.1:1")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name",
    ["quickstart.py", "many_symbols.py", "trading_bot.py", "dataset.py", "blocking_script.py"],
)
def test_help(name: str) -> None:
    result = run_example(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout
    assert "--port" in result.stdout


def test_screens() -> None:
    result = run_example("screens.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "synced 11 codes: 2971 new rows, 0 revised" in out
    assert "synced 11 codes: 16 new rows, 11 revised" in out
    screen = out.split("US, 2+ days to cover, biggest increase first:")[1].split("US biggest")[0]
    assert re.search(r"^US\.BRK\.B +2026-05-15 +12932539 +4\.33 +5\.45$", screen, re.M)
    moves = out.split("US biggest moves in the newest publication:")[1]
    assert re.search(r"^ +US\.SPY 2026-05-15 +2026-04-30 .* 13\.82$", moves, re.M)
    # Before the publication the newest row was 2026-04-30, and its ranking another one.
    then = out.split("before that publication:")[1]
    assert re.search(r"^ +US\.SPY 2026-04-30 +-13\.16$", then, re.M)
    assert "Arrow: 2987 rows, 19 columns" in out
