"""The store's socket tests run over both event loops, as the tests in ``with_simulator`` do."""

from __future__ import annotations

import pytest

from ..conftest import SOCKET_LOOPS

#: Modules here that talk to the simulator over real sockets.
SOCKET_MODULES = frozenset({"test_sync.py"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the socket tests' ``anyio_backend`` over both loops."""
    if "anyio_backend" in metafunc.fixturenames and metafunc.definition.path.name in SOCKET_MODULES:
        metafunc.parametrize("anyio_backend", SOCKET_LOOPS, scope="session")
