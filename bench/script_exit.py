"""How long a script that leaves a `BlockingClient` open takes to exit.

    python bench/script_exit.py [--rounds N]

Each case runs a small script in a fresh interpreter against a simulator in a thread, and times
from the end of the script's own work (a line it prints; for Ctrl-C, the SIGINT sent 0.2 s into a
call the simulator holds) to the process's exit, capped at 10 s. The first case closes its client
and is the reference: the interpreter's own teardown. The figures are quoted in docs/scripts.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAP = 10.0
PRELUDE = """
import signal
import aiomoomoo
from aiomoomoo.testing import SimulatorThread
sim = SimulatorThread(quota=None).__enter__()
client = aiomoomoo.BlockingClient(sim.host, sim.port)
client.connect()
client.get_short_interest("US.AAPL", num=1)
"""
CASES = {
    "close() called (reference)": 'client.close()\nprint("end", flush=True)\n',
    "forgot close()": 'print("end", flush=True)\n',
    "exception after connect": 'print("end", flush=True)\nraise RuntimeError("failed")\n',
    "Ctrl-C during a call": (
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "sim.faults.reply_delay = 60.0\n"
        'print("end", flush=True)\n'
        'client.get_short_interest("US.AAPL")\n'
    ),
}


def time_exit(body: str, interrupt: bool) -> float | None:
    """Seconds from the script's "end" line (or the SIGINT) to its exit; None past `CAP`."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + body],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert child.stdout is not None
    if child.stdout.readline() != "end\n":
        raise RuntimeError("the script failed before its end")
    if interrupt:
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        child.wait(CAP)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return None
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    for name, body in CASES.items():
        figures = [time_exit(body, "Ctrl-C" in name) for _ in range(rounds)]
        shown = [f">{CAP:.0f} (killed)" if s is None else f"{s:.2f}" for s in figures]
        print(f"{name}: {', '.join(shown)} s")


if __name__ == "__main__":
    main()
