"""Settings for the whole suite: the event loops async tests run on, and Hypothesis' profile."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from ._fakes import FakeClock

# Hypothesis loads its "ci" profile when the CI variable is set (derandomized, no example
# database, too_slow health check off). Load the default profile explicitly so CI runs the
# suite exactly as a user's checkout does and cannot hide what would fail for them.
settings.load_profile("default")

ASYNCIO = pytest.param(("asyncio", {}), id="asyncio")
UVLOOP = pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")
#: Tests that run the client or the simulator over real sockets run once per loop: many bots run
#: aiomoomoo on uvloop, whose transports are not asyncio's classes. uvloop has no Windows build.
#: Other async tests (the quota's) drive asyncio's own clock and run on asyncio alone. The socket
#: tests are those under ``with_simulator/`` and the socket modules of the store and the CLI.
HERE = Path(__file__).parent
SOCKET_TESTS = (
    HERE / "with_simulator",
    HERE / "store" / "test_sync.py",
    HERE / "store" / "test_schedule.py",
    HERE / "cli" / "test_simulate_command.py",
)
SOCKET_LOOPS = [ASYNCIO] if sys.platform == "win32" else [ASYNCIO, UVLOOP]


@pytest.fixture(scope="session")
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """The anyio plugin's backend for ``@pytest.mark.anyio`` tests: asyncio."""
    return ("asyncio", {})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the socket tests' ``anyio_backend`` over both loops."""
    path = metafunc.definition.path
    if "anyio_backend" in metafunc.fixturenames and any(
        path.is_relative_to(tests) for tests in SOCKET_TESTS
    ):
        metafunc.parametrize("anyio_backend", SOCKET_LOOPS, scope="session")


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    """The running loop's clock, standing still at 0 until the test moves it."""
    with FakeClock().on_loop() as fake:
        yield fake
