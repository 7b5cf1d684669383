"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiomoomoo.testing import OpenDSimulator, SimulatorThread


@pytest.fixture(scope="module")
def opend() -> Iterator[OpenDSimulator]:
    """A simulator without a quota in a background thread, standing in for a running OpenD."""
    with SimulatorThread(quota=None) as simulator:
        yield simulator
