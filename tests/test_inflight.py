"""The request table without sockets: one deadline timer, exact timeouts, unsettled slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest

from aiomoomoo import RequestTimeoutError
from aiomoomoo._budget import NO_SLOT, Budget
from aiomoomoo._inflight import InFlight, Pending

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def advance_to(self, when: float) -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        self.now = when
        for _ in range(5):
            await asyncio.sleep(0)


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    fake = FakeClock()
    with mock.patch.object(asyncio.get_running_loop(), "time", fake.time):
        yield fake


class Slot:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1

    def give_back(self) -> None:
        raise AssertionError("a sent request's slot is never given back")


def waiting(table: InFlight, timeout: float | None, slot: Any = NO_SLOT) -> tuple[int, Pending]:
    loop = asyncio.get_running_loop()
    entry = Pending(3249, loop.create_future(), bytes, slot, 0, Budget(timeout, loop.time()))
    serial = table.next_serial()
    table.add(serial, entry)
    return serial, entry


def fut(entry: Pending) -> asyncio.Future[Any]:
    assert entry.future is not None
    return entry.future


def timer_count() -> int:
    return len(asyncio.get_running_loop()._scheduled)  # type: ignore[attr-defined]


async def test_requests_share_one_timer_and_each_fails_at_its_own_deadline(
    clock: FakeClock,
) -> None:
    table = InFlight("test:1")
    before = timer_count()
    _, long = waiting(table, 12.0)
    _, other = waiting(table, 12.5)
    assert timer_count() == before + 1  # the later deadline needs no timer of its own
    _, short = waiting(table, 0.3)  # earlier than the timer: it is moved forward
    await clock.advance_to(0.29)
    assert not fut(short).done()
    await clock.advance_to(0.3)
    with pytest.raises(RequestTimeoutError, match=r"proto 3249 \(serial \d+\) within 0.3 s"):
        fut(short).result()
    assert not fut(long).done()
    assert not fut(other).done()
    await clock.advance_to(11.99)
    assert not fut(long).done()
    await clock.advance_to(12.0)
    assert fut(long).done()
    assert not fut(other).done()
    await clock.advance_to(12.5)
    assert fut(other).done()
    assert timer_count() == before  # nothing left to watch, no timer left behind


async def test_a_reply_before_the_deadline_is_never_timed_out(clock: FakeClock) -> None:
    table = InFlight("test:1")
    serial, entry = waiting(table, 1.0)
    table.pending.pop(serial)
    fut(entry).set_result("reply")
    await clock.advance_to(5.0)
    assert fut(entry).result() == "reply"


async def test_a_request_left_behind_keeps_its_slot_until_opend_answers_a_later_one(
    clock: FakeClock,
) -> None:
    table = InFlight("test:1")
    slot = Slot()
    serial, entry = waiting(table, 1.0, slot)
    entry.seq = 0
    table.left(serial, entry)
    assert table.unsettled == {serial: entry}
    assert slot.released == 0
    table.settle(table.next_serial(), seq=1)  # OpenD answered the next request
    assert slot.released == 1
    assert table.unsettled == {}


async def test_take_all_empties_the_table_and_stops_the_timer(clock: FakeClock) -> None:
    table = InFlight("test:1")
    before = timer_count()
    _, first = waiting(table, 1.0)
    serial, second = waiting(table, None)
    table.left(serial, second)
    assert table.take_all() == [first, second]
    assert table.pending == {}
    assert table.unsettled == {}
    await clock.advance_to(2.0)
    assert timer_count() == before
    assert not fut(first).done()
