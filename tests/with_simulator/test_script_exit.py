"""A script that leaves a `BlockingClient` open still exits, and says so with a ResourceWarning.

Each case runs a small script in a fresh interpreter against a simulator in a thread of its own.
Before the fix these never exited: at interpreter exit the main thread waited, through anyio's
portal, for a loop thread the interpreter had already frozen. The subprocess timeout is what
catches a hang; how fast they exit is measured by bench/script_exit.py, not asserted here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Far above the second a script takes to exit, far below never.
HANG = 30.0

PRELUDE = """
import signal, sys, threading, time
import aiomoomoo
from aiomoomoo.testing import SimulatorThread

sim = SimulatorThread(quota=None).__enter__()  # never stopped either: its thread is a daemon
client = aiomoomoo.BlockingClient(sim.host, sim.port)
client.connect()
"""

UNUSED_WARNINGS = "unclosed <BlockingClient of <Client 127.0.0.1:"


def start(body: str) -> subprocess.Popen[str]:
    """Start ``python`` on the prelude and ``body``, ResourceWarnings shown."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-W", "always::ResourceWarning", "-c", PRELUDE + textwrap.dedent(body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
    )


def finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for ``child`` to exit (a hang fails the test); its status and output."""
    try:
        out, err = child.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"the script never exited:\n{out}\n{err}") from None
    return child.returncode, out, err


def test_a_script_that_forgets_close_exits_and_warns() -> None:
    status, out, err = finish(start('print(client.get_short_interest("US.AAPL", num=1))'))
    assert status == 0, err
    assert "<ShortInterestPage US.AAPL rows=1" in out
    assert f"ResourceWarning: {UNUSED_WARNINGS}" in err
    # The BlockingClient closed its Client: the async client has nothing left to warn about.
    assert "unclosed <Client" not in err


def test_an_exception_escaping_after_connect_exits_with_its_traceback() -> None:
    status, _, err = finish(start('raise RuntimeError("the script failed")'))
    assert status == 1
    assert "RuntimeError: the script failed" in err
    assert f"ResourceWarning: {UNUSED_WARNINGS}" in err


def test_ctrl_c_during_a_call_exits() -> None:
    child = start(
        """
        # A runner may start the script with SIGINT ignored; Ctrl-C must reach it here.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sim.faults.reply_delay = 60.0
        print("calling", flush=True)
        client.get_short_interest("US.AAPL")
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "calling\n"
    child.send_signal(signal.SIGINT)
    status, _, err = finish(child)
    assert status in (-signal.SIGINT, 130, 1), err  # how KeyboardInterrupt ends the process
    assert "KeyboardInterrupt" in err
    assert f"ResourceWarning: {UNUSED_WARNINGS}" in err


def test_threads_still_using_an_unclosed_client_finish_before_it_closes() -> None:
    # The client is closed at exit only after the script's own (non-daemon) threads end: a
    # worker that calls it after the main thread has finished still gets its answer.
    status, out, err = finish(
        start(
            """
            def late_call():
                time.sleep(0.3)
                print(client.get_short_interest("US.AAPL", num=2), flush=True)

            threading.Thread(target=late_call).start()
            """
        )
    )
    assert status == 0, err
    assert "<ShortInterestPage US.AAPL rows=2" in out
    assert f"ResourceWarning: {UNUSED_WARNINGS}" in err


def test_a_loop_stuck_in_a_callback_does_not_hold_the_script() -> None:
    # The client waits a bounded time for its loop to close it, then leaves the daemon thread
    # to the interpreter.
    status, _, err = finish(
        start(
            """
            stuck = threading.Event()

            def on_progress(progress):
                stuck.set()
                time.sleep(3600)  # a callback that never returns: the loop thread is stuck

            def fetch():
                client.fetch_short_interest_many(["US.AAPL"], on_progress=on_progress)

            threading.Thread(target=fetch, daemon=True).start()
            stuck.wait()
            """
        )
    )
    assert status == 0, err
    assert f"ResourceWarning: {UNUSED_WARNINGS}" in err
