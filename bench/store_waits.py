"""What a store command does while another program holds a write transaction on its file.

    python bench/store_waits.py [--hold SECONDS] [-- extra sync options]

A helper process opens the store with plain ``sqlite3`` and holds ``BEGIN IMMEDIATE`` (a write
transaction) for ``--hold`` seconds. Meanwhile this script times

- ``aiomoomoo export`` on the store: how long until it ends, its exit status, whether it printed
  a traceback, and its last line;
- ``aiomoomoo sync --demo`` on the store, sent SIGINT (Ctrl-C) three seconds after it starts: how
  long from the SIGINT to its exit, and the same facts;
- ``aiomoomoo sync --demo`` left alone: how long until it gives up (or finishes).

Every process talks only to loopback (``--demo`` is the simulator in the same process).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE IF NOT EXISTS holder (x)")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""
# The child answers SIGINT as a terminal's Ctrl-C would, even if started with SIGINT ignored.
_CLI = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from aiomoomoo.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(args: list[str], interrupt_after: float | None) -> tuple[float, int, str]:
    """(seconds from the start, or from the SIGINT, to the exit; exit status; stderr)."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", _CLI, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    if interrupt_after is not None:
        time.sleep(interrupt_after)
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    return time.monotonic() - started, child.returncode, stderr


def _line(name: str, result: tuple[float, int, str]) -> str:
    seconds, status, stderr = result
    lines = stderr.strip().splitlines()
    traceback = "with a traceback" if "Traceback" in stderr else "no traceback"
    last = lines[-1] if lines else ""
    return f"{name}: {seconds:.2f} s, exit {status}, {traceback}, {len(lines)} line(s): {last}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=45.0, help="seconds the writer holds")
    parser.add_argument("extra", nargs="*", help="options added to sync (e.g. --wait 5)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "s.db"
        sync = ["sync", "--demo", "--full", "--store", str(store), "US.AAPL", *options.extra]
        status = subprocess.run(
            [sys.executable, "-c", _CLI, *sync], env=_env(), capture_output=True, check=False
        )
        assert status.returncode == 0, status.stderr
        for name, args, interrupt in (
            ("export while a write transaction is held", ["export", "--store", str(store)], None),
            ("sync, Ctrl-C 3 s after it starts; time from Ctrl-C to exit", sync, 3.0),
            ("sync left to wait", sync, None),
        ):
            holder = subprocess.Popen(
                [sys.executable, "-c", _HOLDER, str(store), str(options.hold)],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert holder.stdout is not None
                assert holder.stdout.readline() == "holding\n"
                print(_line(name, _run(args, interrupt)), flush=True)
            finally:
                holder.kill()
                holder.wait()


if __name__ == "__main__":
    main()
