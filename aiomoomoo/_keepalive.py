"""Keep-alive and liveness of one connection, on the event loop's clock.

OpenD asks for a KeepAlive every keepAliveInterval seconds; like the official client we send at
4/5 of it, and give the link up when no whole frame has arrived for 3.3 intervals. The
`Heartbeat` only keeps time: the connection sends the KeepAlive and is dropped through the
small `Beating` interface, so this module needs nothing of it.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from ._errors import ConnectionLostError, MoomooError

__all__ = ["KEEPALIVE_FRACTION", "LIVENESS_INTERVALS", "Beating", "Heartbeat"]

KEEPALIVE_FRACTION: Final = 0.8
LIVENESS_INTERVALS: Final = 3.3


class Beating(Protocol):
    """What a heartbeat needs of its connection."""

    address: str

    @property
    def is_ready(self) -> bool: ...
    @property
    def last_frame(self) -> float: ...
    def send_keepalive(self) -> None: ...
    def abort(self, error: MoomooError, *, graceful: bool = False) -> None: ...


class Heartbeat:
    """Sends ``connection``'s KeepAlives every 0.8 ``interval`` and drops it after 3.3 silent ones.

    Silence is counted from the last whole frame received (``connection.last_frame``), so a
    peer that trickles bytes of a frame it never finishes is as silent as one that sends nothing.
    """

    __slots__ = ("_connection", "_interval", "_keepalive", "_liveness", "_loop")

    def __init__(self, connection: Beating, interval: float) -> None:
        self._connection = connection
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._keepalive: asyncio.TimerHandle | None = None
        self._liveness: asyncio.TimerHandle | None = None

    def start(self) -> None:
        interval = self._interval
        self._keepalive = self._loop.call_later(interval * KEEPALIVE_FRACTION, self._tick)
        self._liveness = self._loop.call_at(
            self._connection.last_frame + interval * LIVENESS_INTERVALS, self._check
        )

    def stop(self) -> None:
        for timer in (self._keepalive, self._liveness):
            if timer is not None:
                timer.cancel()

    def _tick(self) -> None:
        if not self._connection.is_ready:
            return
        self._connection.send_keepalive()
        self._keepalive = self._loop.call_later(self._interval * KEEPALIVE_FRACTION, self._tick)

    def _check(self) -> None:
        connection = self._connection
        if not connection.is_ready:
            return
        limit = self._interval * LIVENESS_INTERVALS
        silent = self._loop.time() - connection.last_frame
        if silent >= limit:
            connection.abort(
                ConnectionLostError(
                    f"OpenD at {connection.address} sent no whole frame for {silent:.1f} s "
                    f"(sent nothing for the keep-alive limit of {limit:g} s)"
                )
            )
            return
        self._liveness = self._loop.call_at(connection.last_frame + limit, self._check)
