"""Driving the unmodified official SDK (moomoo-api) against the simulator, for the interop tests."""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from aiomoomoo.testing import OpenDSimulator

#: InitConnect with the simulator takes milliseconds; the official client would retry for ever.
CONNECT_TIMEOUT = 10.0


def import_moomoo() -> ModuleType:
    """The official SDK, imported without keeping the SIGINT handler it installs."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        return importlib.import_module("moomoo")
    finally:
        # Its handler calls os._exit(0), which would make Ctrl-C kill pytest without a report.
        signal.signal(signal.SIGINT, previous)


@contextmanager
def quote_context(moomoo: ModuleType, sim: OpenDSimulator) -> Iterator[Any]:
    """An official ``OpenQuoteContext`` on ``sim``, closed afterwards.

    Its constructor retries InitConnect for ever and then keeps reconnecting in the background;
    if the simulator fails it, a timer closes the context so the failure stays in this test.
    """
    created: list[Any] = []

    class QuoteContext(moomoo.OpenQuoteContext):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            created.append(self)
            super().__init__(*args, **kwargs)

    gave_up = threading.Event()

    def give_up() -> None:
        gave_up.set()
        created[0].close()

    timer = threading.Timer(CONNECT_TIMEOUT, give_up)
    timer.start()
    try:
        ctx = QuoteContext(host=sim.host, port=sim.port)
    finally:
        timer.cancel()
    try:
        assert not gave_up.is_set(), f"the official client's InitConnect failed for {sim!r}"
        yield ctx
    finally:
        ctx.close()
