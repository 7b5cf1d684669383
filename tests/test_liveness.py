"""Keep-alive and liveness of one connection, on a fake loop clock and a fake transport.

The connection sends a KeepAlive every 0.8 keep-alive intervals and gives up after 3.3 intervals
without a whole frame, at that instant (not at the next KeepAlive tick); bytes of a frame that
never completes do not count as life.
"""

from __future__ import annotations

import asyncio

import pytest

from aiomoomoo import ConnectionLostError
from aiomoomoo._connection import Connection, ConnectionInfo, State
from aiomoomoo._proto import KeepAlive_pb2
from aiomoomoo._wire import FrameDecoder, ProtoId, encode_frame

from ._fakes import FakeClock, FakeTransport, attach

pytestmark = pytest.mark.anyio


def open_connection(interval: float) -> tuple[Connection, FakeTransport, list[float]]:
    """A connection past InitConnect with ``interval``, and the times it was lost at."""
    connection = Connection("test:1", max_body_size=1 << 20)
    transport = attach(connection)
    connection.info = ConnectionInfo(1, 1011, 1, keepalive_interval=interval)
    lost: list[float] = []
    loop = asyncio.get_running_loop()
    connection.on_lost = lambda c, e: lost.append(loop.time())
    connection.start_keepalive()
    return connection, transport, lost


def keepalives(transport: FakeTransport) -> list[int]:
    """Serials of the KeepAlives written so far."""
    return [f.serial for f in FrameDecoder().feed(bytes(transport.sent)) if f.proto_id == 1004]


async def test_keepalives_go_at_four_fifths_of_the_interval(clock: FakeClock) -> None:
    _, transport, _ = open_connection(10.0)
    await clock.run_until(7.99)
    assert keepalives(transport) == []
    await clock.run_until(8.0)
    assert len(keepalives(transport)) == 1
    await clock.run_until(16.0)
    assert len(keepalives(transport)) == 2


async def test_silence_is_detected_at_three_point_three_intervals(clock: FakeClock) -> None:
    # Before: checked only at KeepAlive ticks, so silence was noticed at 4.0 intervals (40 s).
    connection, transport, lost = open_connection(10.0)
    await clock.run_until(32.9)
    assert lost == []
    await clock.run_until(33.0)
    assert lost == [33.0]
    assert connection.state is State.LOST
    assert transport.aborted
    assert isinstance(connection.lost_error, ConnectionLostError)
    assert "no whole frame for 33.0 s" in str(connection.lost_error)


async def test_a_whole_frame_pushes_the_limit_back(clock: FakeClock) -> None:
    connection, transport, lost = open_connection(10.0)
    await clock.run_until(24.0)
    serial = keepalives(transport)[-1]
    reply = KeepAlive_pb2.Response(retType=0)
    reply.s2c.time = 1
    connection.data_received(encode_frame(ProtoId.KEEP_ALIVE, serial, reply.SerializeToString()))
    await clock.run_until(56.9)
    assert lost == []
    await clock.run_until(57.0)
    assert lost == [57.0]


async def test_bytes_of_an_unfinished_frame_are_not_life(clock: FakeClock) -> None:
    # Before: every byte reset the silence clock, so a trickling peer was never recycled.
    connection, _, lost = open_connection(10.0)
    trickle = encode_frame(ProtoId.KEEP_ALIVE, 1, bytes(1000))
    for second in range(1, 33):
        await clock.run_until(float(second))
        connection.data_received(trickle[second : second + 1])
    await clock.run_until(33.0)
    assert lost == [33.0]


async def test_the_largest_interval_notices_a_dead_peer_within_forty_seconds(
    clock: FakeClock,
) -> None:
    _, _, lost = open_connection(12.0)  # the cap on what OpenD may advertise
    await clock.run_until(39.5)
    assert lost == []
    await clock.run_until(39.6)
    assert lost == [39.6]


async def test_a_transport_that_is_not_an_asyncio_transport_is_accepted() -> None:
    # uvloop's transports do not subclass asyncio.Transport; the check for it broke them.
    connection = Connection("test:1", max_body_size=1 << 20)
    transport = attach(connection)
    assert not isinstance(transport, asyncio.BaseTransport)
    connection.info = ConnectionInfo(1, 1011, 1, keepalive_interval=10.0)
    connection._write(b"ping")
    assert transport.sent == b"ping"
    connection.abort(ConnectionLostError("done"))
