"""The request quota, on a fake loop clock: exact grant times, FCFS, cancellation, the window.

Time is controlled the way aiolimiter's tests control it: the running loop's ``time()`` is
replaced by a clock that moves only when the test advances it, so timers fire at exact instants
and nothing here sleeps for real. A test that waits on a timer the clock never reaches would
block, so every wait is driven by :meth:`FakeClock.run_for` or :meth:`FakeClock.run_until`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import aiolimiter
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiomoomoo import RequestLimiter, SlidingWindowLimiter
from aiomoomoo._rate_limit import adapt_rate_limit, adopt_server_budget

from ._fakes import FakeClock, settle

pytestmark = pytest.mark.anyio


async def finish(*tasks: asyncio.Task[None]) -> None:
    """Collect tasks that must have finished by now (awaiting a waiting one would block)."""
    await settle()
    waiting = [task.get_name() for task in tasks if not task.done()]
    assert not waiting, f"still waiting: {waiting}"
    await asyncio.gather(*tasks)


@dataclass
class Log:
    """Who was granted when, in grant order."""

    clock: FakeClock
    grants: list[tuple[str, float]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.grants]

    def times(self) -> dict[str, float]:
        return dict(self.grants)

    def acquire(self, limiter: SlidingWindowLimiter, name: str) -> asyncio.Task[None]:
        async def run() -> None:
            await limiter.acquire()
            self.grants.append((name, self.clock.now))

        return asyncio.get_running_loop().create_task(run(), name=name)

    def slot(
        self, limiter: SlidingWindowLimiter, name: str, reply: asyncio.Event
    ) -> asyncio.Task[None]:
        """A request that holds its slot until ``reply`` is set (its reply arrived)."""

        async def run() -> None:
            async with limiter.slot():
                self.grants.append((name, self.clock.now))
                await reply.wait()

        return asyncio.get_running_loop().create_task(run(), name=name)


# -- construction and state ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 1.0), ValueError, "max_requests must be at least 1, got 0"),
        ((-3, 1.0), ValueError, "got -3"),
        ((1.5, 1.0), TypeError, "max_requests must be an int, got 1.5"),
        (("30", 1.0), TypeError, "got '30'"),
        ((True, 1.0), TypeError, "got True"),
        ((None, 1.0), TypeError, "got None"),
        ((30, 0), ValueError, "period must be a positive number of seconds, got 0"),
        ((30, -1.0), ValueError, "got -1.0"),
        ((30, math.nan), ValueError, "got nan"),
        ((30, "30"), ValueError, "got '30'"),
        ((30, True), ValueError, "got True"),
    ],
)
def test_bad_constructor_arguments_are_refused(
    args: tuple[object, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SlidingWindowLimiter(*args)  # type: ignore[arg-type]


def test_defaults_are_opends_quota() -> None:
    limiter = SlidingWindowLimiter()
    assert (limiter.max_requests, limiter.period) == (30, 30.0)
    assert isinstance(SlidingWindowLimiter(2, 1).period, float)


async def test_repr_shows_the_state(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(2, 10)
    assert repr(limiter) == "<SlidingWindowLimiter 2/10s in_flight=0 recent=0 waiting=0>"
    log = Log(clock)
    reply = asyncio.Event()
    tasks = [log.slot(limiter, "a", reply), log.acquire(limiter, "b"), log.acquire(limiter, "c")]
    await settle()
    assert repr(limiter) == "<SlidingWindowLimiter 2/10s in_flight=1 recent=1 waiting=1>"
    reply.set()
    await settle()
    await settle()
    assert repr(limiter) == "<SlidingWindowLimiter 2/10s in_flight=0 recent=2 waiting=1>"
    await clock.run_for(10)
    assert repr(limiter) == "<SlidingWindowLimiter 2/10s in_flight=0 recent=1 waiting=0>"
    assert log.times() == {"a": 0, "b": 0, "c": 10}
    await finish(*tasks)


async def test_has_capacity(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 5)
    assert limiter.has_capacity()
    await limiter.acquire()
    assert not limiter.has_capacity()
    await clock.run_for(4.999)
    assert not limiter.has_capacity()
    await clock.run_for(0.001)
    assert limiter.has_capacity()


# -- grant times -----------------------------------------------------------------------------


async def test_acquire_grants_at_exact_window_boundaries(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(3, 10)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(8)]
    await settle()
    assert log.names() == ["0", "1", "2"]
    await clock.run_for(9.999)
    assert len(log.grants) == 3
    await clock.run_until(10)
    assert len(log.grants) == 6
    await clock.run_until(20)
    await finish(*tasks)
    assert log.grants == [(str(i), 10.0 * (i // 3)) for i in range(8)]


async def test_acquire_behind_acquire_is_woken(clock: FakeClock) -> None:
    # Regression: a grant through acquire() re-armed no timer, so the third waiter slept for ever.
    limiter = SlidingWindowLimiter(1, 10)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(4)]
    for when in (0, 10, 20, 30):
        await clock.run_until(when)
    await finish(*tasks)
    assert log.grants == [("0", 0), ("1", 10), ("2", 20), ("3", 30)]


async def test_slot_counts_until_period_after_the_reply(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(2, 10)
    log = Log(clock)
    replies = {name: asyncio.Event() for name in "abcd"}
    tasks = [log.slot(limiter, name, replies[name]) for name in "abcd"]
    await settle()
    assert log.names() == ["a", "b"]
    await clock.run_until(3)
    replies["a"].set()
    await settle()
    await clock.run_until(5)
    replies["b"].set()
    await settle()
    # The reply to "a" came at 3, so its slot is free at 13, not at 10 (its grant plus period).
    await clock.run_until(12.999)
    assert log.names() == ["a", "b"]
    await clock.run_until(13)
    assert log.times()["c"] == 13
    await clock.run_until(14.999)
    assert "d" not in log.times()
    await clock.run_until(15)
    assert log.times()["d"] == 15
    replies["c"].set()
    replies["d"].set()
    await finish(*tasks)


async def test_in_flight_requests_hold_their_slot_however_long(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 1)
    log = Log(clock)
    slow, other = asyncio.Event(), asyncio.Event()
    tasks = [log.slot(limiter, "slow", slow), log.slot(limiter, "next", other)]
    await settle()
    await clock.run_for(100)
    assert log.names() == ["slow"]
    slow.set()
    await settle()
    await clock.run_for(0.5)
    assert log.names() == ["slow"]
    await clock.run_for(0.5)
    assert log.grants == [("slow", 0), ("next", 101)]
    other.set()
    await finish(*tasks)


async def test_context_manager_acquires(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 2)
    async with limiter:
        pass
    assert not limiter.has_capacity()
    await clock.run_for(2)
    assert limiter.has_capacity()


# -- order and cancellation ------------------------------------------------------------------


async def test_first_come_first_served(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 10)
    log = Log(clock)
    tasks = [log.acquire(limiter, "a")]
    await clock.run_for(1)
    tasks.append(log.acquire(limiter, "b"))
    await clock.run_for(1)
    tasks.append(log.acquire(limiter, "c"))
    await settle()
    # At 10 the slot frees; a newcomer that runs before the limiter's timer must still queue.
    clock.now = 10
    assert not limiter.has_capacity()
    tasks.append(log.acquire(limiter, "late"))
    await settle()
    for when in (20, 30):
        await clock.run_until(when)
    await finish(*tasks)
    assert log.grants == [("a", 0), ("b", 10), ("c", 20), ("late", 30)]


async def test_cancelled_waiter_gives_up_its_place(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 10)
    log = Log(clock)
    tasks = {name: log.acquire(limiter, name) for name in "abcd"}
    await clock.run_for(5)
    assert "waiting=3" in repr(limiter)
    tasks["c"].cancel()
    await settle()
    assert "waiting=2" in repr(limiter)
    await clock.run_until(10)
    await clock.run_until(20)
    assert log.grants == [("a", 0), ("b", 10), ("d", 20)]
    assert tasks["c"].cancelled()
    await finish(tasks["a"], tasks["b"], tasks["d"])


async def test_cancelled_after_grant_before_running_returns_the_slot(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(1, 10)
    log = Log(clock)
    first = log.acquire(limiter, "a")
    reply = asyncio.Event()
    granted = log.slot(limiter, "b", reply)
    behind = log.slot(limiter, "c", reply)
    await settle()
    # Step the loop one iteration at a time until the limiter's timer has granted "b"'s slot;
    # "b" has not run since, so cancelling it now cancels a granted, unused slot.
    clock.now = 10
    for _ in range(5):
        await asyncio.sleep(0)
        if "in_flight=1" in repr(limiter):
            break
    assert "in_flight=1 recent=0 waiting=1" in repr(limiter)
    assert log.names() == ["a"]
    granted.cancel()
    await settle()
    assert log.grants == [("a", 0), ("c", 10)]
    assert granted.cancelled()
    reply.set()
    await settle()
    await finish(first, behind)
    assert "in_flight=0 recent=1 waiting=0" in repr(limiter)


async def test_cancelled_while_in_flight_counts_as_sent(clock: FakeClock) -> None:
    # Cancelled after its grant, inside the slot: the request may have left, so the slot cools
    # down for a period from the cancellation, as if the reply had come then.
    limiter = SlidingWindowLimiter(1, 10)
    log = Log(clock)
    reply = asyncio.Event()
    sent = log.slot(limiter, "a", reply)
    behind = log.slot(limiter, "b", reply)
    await clock.run_for(3)
    sent.cancel()
    await clock.run_until(12.999)
    assert log.names() == ["a"]
    await clock.run_until(13)
    assert log.grants == [("a", 0), ("b", 13)]
    reply.set()
    await settle()
    await finish(behind)
    assert sent.cancelled()


async def test_cancelling_every_waiter_leaves_a_clean_limiter(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(2, 10)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(6)]
    await settle()
    for task in tasks[2:]:
        task.cancel()
    await clock.run_for(10)
    assert log.names() == ["0", "1"]
    assert repr(limiter) == "<SlidingWindowLimiter 2/10s in_flight=0 recent=0 waiting=0>"
    assert limiter.has_capacity()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- the window property over random schedules -----------------------------------------------


@dataclass(frozen=True)
class Planned:
    arrival: int
    hold: int  # seconds from grant to reply
    cancel_at: int | None
    use_slot: bool


@dataclass
class Outcome:
    order: int = -1
    arrived: float | None = None
    granted: float | None = None
    released: float | None = None


def run_on_fake_clock(main: Callable[[FakeClock], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` in a fresh event loop whose clock is a :class:`FakeClock`."""
    fake = FakeClock()
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        with mock.patch.object(loop, "time", fake.time):
            runner.run(main(fake))


def play(
    limiter: SlidingWindowLimiter,
    plan: list[Planned],
    *,
    each_second: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Run ``plan``'s requests through ``limiter`` on a fake clock, second by second.

    ``each_second(now)`` runs as the clock reaches each whole second (0 before the first
    request, then before that second's cancellations). Returns each request's outcome; fails
    if any is still waiting at the horizon.
    """
    outcomes = [Outcome() for _ in plan]
    arrivals = iter(range(len(plan)))

    async def main(clock: FakeClock) -> None:
        async def request(planned: Planned, outcome: Outcome) -> None:
            await asyncio.sleep(planned.arrival)
            outcome.order = next(arrivals)
            outcome.arrived = clock.now
            if not planned.use_slot:
                await limiter.acquire()
                outcome.granted = outcome.released = clock.now
                return
            async with limiter.slot():
                outcome.granted = clock.now
                try:
                    await asyncio.sleep(planned.hold)
                finally:
                    outcome.released = clock.now

        if each_second is not None:
            each_second(0)
        tasks = [
            asyncio.get_running_loop().create_task(request(p, o))
            for p, o in zip(plan, outcomes, strict=True)
        ]
        await settle()
        for now in range(1, 500):
            if all(task.done() for task in tasks):
                break
            await clock.run_until(now)
            if each_second is not None:
                each_second(now)
            for planned, task in zip(plan, tasks, strict=True):
                if planned.cancel_at == now:
                    task.cancel()
            await settle()
        assert all(task.done() for task in tasks), "requests still waiting at the horizon"
        await asyncio.gather(*tasks, return_exceptions=True)

    run_on_fake_clock(main)
    return outcomes


schedules = st.tuples(
    st.integers(1, 4),
    st.integers(1, 5),
    st.lists(
        st.builds(
            Planned,
            arrival=st.integers(0, 20),
            hold=st.integers(0, 6),
            cancel_at=st.none() | st.integers(0, 40),
            use_slot=st.booleans(),
        ),
        min_size=1,
        max_size=14,
    ),
)


@settings(max_examples=150, deadline=None)
@given(schedules)
def test_no_window_ever_holds_more_than_max(schedule: tuple[int, int, list[Planned]]) -> None:
    """Whatever the arrivals, hold times and cancellations, the limiter is exact and fair.

    - At no instant are more than ``max_requests`` requests in use, where a request is in use
      from its grant until ``period`` after its reply (for ``acquire()``, after its grant).
    - No request waits while a slot is free: one granted later than it arrived was granted the
      instant the number in use fell below ``max_requests``.
    - Grants follow arrival order; a request cancelled while waiting is never granted; every
      other request is.
    """
    max_requests, period, plan = schedule
    outcomes = play(SlidingWindowLimiter(max_requests, period), plan)

    used: list[tuple[float, float]] = []
    for planned, outcome in zip(plan, outcomes, strict=True):
        if outcome.granted is None:
            assert planned.cancel_at is not None, f"{planned} was never granted"
            continue
        assert outcome.released is not None
        used.append((outcome.granted, outcome.released + period))
    for start, _ in used:
        in_use = sum(1 for begin, end in used if begin <= start < end)
        assert in_use <= max_requests, f"{in_use} in use at {start}: {used}"
    for outcome in outcomes:
        if outcome.granted is None or outcome.granted == outcome.arrived:
            continue
        at = outcome.granted
        just_before = sum(1 for begin, end in used if begin < at <= end)
        assert just_before == max_requests, f"waited for no reason until {at}: {used}"
    fifo = sorted((o for o in outcomes if o.granted is not None), key=lambda o: o.order)
    grants = [o.granted or 0.0 for o in fifo]
    assert grants == sorted(grants), "grants out of arrival order"


async def test_aiolimiter_lets_more_than_max_into_one_window(clock: FakeClock) -> None:
    # Why the default limiter is not a leaky bucket: AsyncLimiter(10, 10) grants a burst of 10,
    # then drips one a second, so 19 land inside the first 10 seconds; OpenD would refuse 9.
    leaky = aiolimiter.AsyncLimiter(10, 10)
    exact = SlidingWindowLimiter(10, 10)
    for limiter, expected in ((leaky, 19), (exact, 10)):
        granted: list[float] = []

        async def take(limiter: RequestLimiter = limiter, granted: list[float] = granted) -> None:
            await limiter.acquire()
            granted.append(clock.now)

        start = clock.now
        tasks = [asyncio.get_running_loop().create_task(take()) for _ in range(40)]
        for _ in range(10 * 4):
            await clock.run_for(0.25)
        in_first_window = sum(1 for t in granted if t < start + 10)
        assert in_first_window == expected, type(limiter).__name__
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- adapt_rate_limit ------------------------------------------------------------------------


async def test_adapt_tuple_builds_a_private_limiter(clock: FakeClock) -> None:
    quota = adapt_rate_limit((5, 2.5))
    assert isinstance(quota, SlidingWindowLimiter)
    assert (quota.max_requests, quota.period) == (5, 2.5)
    assert adapt_rate_limit((5, 2.5)) is not quota


def test_adapt_shares_a_sliding_window_limiter() -> None:
    limiter = SlidingWindowLimiter(3, 1)
    assert adapt_rate_limit(limiter) is limiter


async def test_adapt_none_never_waits(clock: FakeClock) -> None:
    quota = adapt_rate_limit(None)
    assert repr(quota) == "<no rate limit>"
    for _ in range(1000):
        async with quota.slot():
            pass


async def test_adapt_wraps_any_async_acquire(clock: FakeClock) -> None:
    leaky = aiolimiter.AsyncLimiter(2, 10)
    assert isinstance(leaky, RequestLimiter)
    quota = adapt_rate_limit(leaky)
    assert repr(quota) == repr(leaky)
    async with quota.slot():
        pass
    async with quota.slot():
        pass
    assert not leaky.has_capacity()

    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        async def acquire(self) -> None:
            self.calls += 1

    counting = Counting()
    async with adapt_rate_limit(counting).slot():
        pass
    assert counting.calls == 1


@pytest.mark.parametrize(
    ("rate_limit", "error", "message"),
    [
        ((30,), ValueError, r"rate_limit tuple must be \(max_requests, period_seconds\)"),
        ((30, 30, 30), ValueError, r"got \(30, 30, 30\)"),
        ((0, 30), ValueError, "max_requests must be at least 1"),
        ((30, 0), ValueError, "period must be a positive number"),
        ((30.5, 30), TypeError, "max_requests must be an int"),
        ([30, 30], TypeError, r"rate_limit must be .*got \[30, 30\]"),
        ("30/30", TypeError, "got '30/30'"),
        (30, TypeError, "aiolimiter.AsyncLimiter; got 30"),
        (object(), TypeError, "got <object object"),
    ],
)
def test_adapt_refuses_what_it_cannot_use(
    rate_limit: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        adapt_rate_limit(rate_limit)


# -- one limiter, successive event loops -----------------------------------------------------


def test_a_limiter_outlives_its_event_loop() -> None:
    # A notebook or a blocking wrapper runs one asyncio.run() after another with one limiter.
    # The first run ends with a waiter queued, so a timer is armed in a loop that then closes;
    # the second run must still wait for the window, and be woken at its end.
    limiter = SlidingWindowLimiter(1, 0.3)

    async def first() -> None:
        await limiter.acquire()
        waiter = asyncio.get_running_loop().create_task(limiter.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()

    async def second() -> float:
        start = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):
            await limiter.acquire()
        return asyncio.get_running_loop().time() - start

    asyncio.run(first())
    waited = asyncio.run(second())
    assert 0 < waited < 5
    assert "waiting=0" in repr(limiter)


def test_a_waiter_of_a_closed_loop_blocks_nobody() -> None:
    # A loop closed without cancelling its tasks leaves a waiter that can never run: granting it
    # would fail, keeping it at the head of the queue would block every later request.
    limiter = SlidingWindowLimiter(1, 0.2)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(limiter.acquire())
        stranded = loop.create_task(limiter.acquire())
        loop.run_until_complete(asyncio.sleep(0))
        assert not stranded.done()
    finally:
        loop.close()

    async def later() -> None:
        async with asyncio.timeout(5):
            await limiter.acquire()

    asyncio.run(later())
    assert "in_flight=0 recent=1 waiting=0" in repr(limiter)


def test_successive_loops_get_exact_grant_times() -> None:
    """The same, on a fake clock both loops share: the second loop's waiter goes exactly at 10."""
    limiter = SlidingWindowLimiter(1, 10)
    clock = FakeClock()
    grants: list[float] = []

    async def first(clock: FakeClock) -> None:
        await limiter.acquire()
        grants.append(clock.now)
        asyncio.get_running_loop().create_task(limiter.acquire())
        await clock.run_for(5)

    async def second(clock: FakeClock) -> None:
        task = asyncio.get_running_loop().create_task(limiter.acquire())
        await clock.run_until(9.999)
        assert not task.done()
        await clock.run_until(10)
        await finish(task)
        grants.append(clock.now)

    for main in (first, second):
        runner = asyncio.Runner()
        # Patched until the runner has closed: its shutdown must not see the real clock.
        with mock.patch.object(runner.get_loop(), "time", clock.time), runner:
            runner.run(main(clock))
    assert grants == [0, 10]


def test_on_uvloops_millisecond_clock_a_slot_is_never_free_early() -> None:
    """uvloop's ``time()`` counts whole milliseconds, so it reads up to 1 ms behind the moment a
    reply arrives. Counted from that reading, a slot would free up to 1 ms before OpenD's window
    has passed the reply, and OpenD would see N+1 requests in one window."""
    uvloop = pytest.importorskip("uvloop")
    limiter = SlidingWindowLimiter(1, 10.0)

    async def main() -> None:
        # A reply that arrives at 0.0004 s, which uvloop reads as 0.000.
        clock = FakeClock(0.0)
        with mock.patch.object(asyncio.get_running_loop(), "time", clock.time):
            slot = await limiter.grant()
            slot.release()
            # 10 s after the reading may be only 9.9996 s after the reply: still taken.
            clock.now = 10.0
            assert not limiter.has_capacity()
            clock.now = 10.002
            assert limiter.has_capacity()

    uvloop.run(main())


# -- tighten: adopting the budget the server states ------------------------------------------


def test_tighten_adopts_a_budget_the_limiter_overruns(caplog: pytest.LogCaptureFixture) -> None:
    limiter = SlidingWindowLimiter(30, 30)
    # 30 in 30 s may put all 30 into 3 s: over a budget of 5 per 3 s.
    assert limiter.tighten(5, 3) is True
    # Added beside the window it was created with, never in its place.
    assert limiter.limits == ((5, 3.0), (30, 30.0))
    assert (limiter.max_requests, limiter.period) == (5, 3.0)
    assert repr(limiter) == "<SlidingWindowLimiter 5/3s+30/30s in_flight=0 recent=0 waiting=0>"
    # The same budget again, or a looser one, changes nothing and logs nothing more.
    assert limiter.tighten(5, 3) is False
    assert limiter.tighten(60, 30) is False
    assert limiter.tighten(10, 3.0) is False
    assert limiter.limits == ((5, 3.0), (30, 30.0))
    messages = [r.getMessage() for r in caplog.records if r.name == "aiomoomoo"]
    assert messages == [
        "OpenD allows 5 requests per 3 s, fewer than this client's limiter (30 per 30 s) lets "
        "through: limiting to 5 per 3 s and 30 per 30 s from now on"
    ]


@pytest.mark.parametrize(
    ("configured", "budget", "limits"),
    [
        ((30, 30), (30, 30), None),  # the same
        ((30, 30), (5, 3), [(5, 3), (30, 30)]),  # a higher rate, but ours puts 30 into 3 s
        # A lower rate over a longer period, which no 30 s of ours can exceed: ours leaves.
        ((30, 30), (20, 60), [(20, 60)]),
        # 1 per 1 s puts at most 3 into 3 s, but only from now on: ours still counts the past.
        ((3, 3), (1, 1), [(1, 1), (3, 3)]),
        ((1, 1), (5, 3), None),  # at most 3 in any 3 s
        ((2, 1), (5, 3), [(2, 1), (5, 3)]),  # up to 6 in 3 s
        ((5, 3), (30, 30), [(5, 3), (30, 30)]),  # up to 50 in 30 s
        ((3, 0.3), (30, 3), None),  # 3 / 0.3 is not exactly 10 in floating point
        ((4, 30), (4, 30), None),  # a refusal caused by another process: nothing to learn
        # A refusal stating a faster budget than the user's never loosens the user's window.
        ((5, 2), (1, 0.05), [(1, 0.05), (5, 2)]),
    ],
)
def test_tighten_compares_budgets_as_windows(
    configured: tuple[int, float], budget: tuple[int, float], limits: list[tuple[int, float]] | None
) -> None:
    limiter = SlidingWindowLimiter(*configured)
    assert limiter.tighten(*budget) is (limits is not None)
    expected = [configured] if limits is None else limits
    assert limiter.limits == tuple((count, float(period)) for count, period in expected)


def test_budgets_learned_from_the_server_add_up() -> None:
    limiter = SlidingWindowLimiter(30, 30)
    assert limiter.tighten(5, 3)
    # Neither 5 per 3 s nor 20 per 30 s keeps within the other: both hold from now on.
    assert limiter.tighten(20, 30)
    assert list(limiter.limits) == [(5, 3.0), (20, 30.0)]
    assert repr(limiter).startswith("<SlidingWindowLimiter 5/3s+20/30s ")
    # A stricter one replaces the budget it covers and keeps the other...
    assert limiter.tighten(3, 3)
    assert list(limiter.limits) == [(3, 3.0), (20, 30.0)]
    # ...but not a longer one it implies only by adding up its own periods: 2 per 3 s is at most
    # 20 per 30 s from now on, and 20 per 30 s still counts what it let through before.
    assert limiter.tighten(2, 3)
    assert list(limiter.limits) == [(2, 3.0), (20, 30.0)]
    assert not limiter.tighten(40, 30)


async def test_learned_windows_all_hold(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(30, 30)
    limiter.tighten(5, 3)
    limiter.tighten(20, 30)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(30)]
    for when in range(0, 37, 3):
        await clock.run_until(when)
    await finish(*tasks)
    # 5 every 3 s until 20 are in the last 30 s; then the oldest five leave the long window.
    expected = [0] * 5 + [3] * 5 + [6] * 5 + [9] * 5 + [30] * 5 + [33] * 5
    assert [t for _, t in log.grants] == expected


async def test_tighten_never_frees_a_queue_the_users_window_holds(clock: FakeClock) -> None:
    # A stated budget with a faster long-run rate is no reason to let the queue go early: the
    # user's 10 per 30 s still holds it until 30 s, and then the stated 5 per 3 s paces it.
    limiter = SlidingWindowLimiter(10, 30)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(17)]
    await settle()
    assert len(log.grants) == 10
    assert limiter.tighten(5, 3)
    await clock.run_until(3)
    assert len(log.grants) == 10
    await clock.run_until(29.999)
    assert len(log.grants) == 10
    await clock.run_until(30)
    assert len(log.grants) == 15
    await clock.run_until(33)
    await finish(*tasks)
    assert [t for _, t in log.grants] == [0] * 10 + [30] * 5 + [33] * 2


async def test_tighten_holds_queued_requests_to_the_stricter_budget(clock: FakeClock) -> None:
    # The timer armed for the old window fires first; the queue must wait for the new one.
    limiter = SlidingWindowLimiter(10, 1)
    log = Log(clock)
    tasks = [log.acquire(limiter, str(i)) for i in range(13)]
    await settle()
    assert limiter.tighten(2, 5)
    await clock.run_until(1)
    await clock.run_until(4.999)
    assert len(log.grants) == 10
    await clock.run_until(5)
    await clock.run_until(10)
    await finish(*tasks)
    assert [t for _, t in log.grants] == [0] * 10 + [5] * 2 + [10]


def test_tighten_refuses_what_is_no_budget() -> None:
    limiter = SlidingWindowLimiter()
    with pytest.raises(ValueError, match="max_requests must be at least 1, got 0"):
        limiter.tighten(0, 3)
    with pytest.raises(ValueError, match="period must be a positive number of seconds"):
        limiter.tighten(5, 0)
    with pytest.raises(TypeError, match="max_requests must be an int"):
        limiter.tighten(5.0, 3)  # type: ignore[arg-type]
    assert limiter.limits == ((30, 30.0),)


async def test_only_a_sliding_window_limiter_learns_the_servers_budget() -> None:
    own = SlidingWindowLimiter(30, 30)
    assert adopt_server_budget(own, (5, 3.0))
    assert own.limits == ((5, 3.0), (30, 30.0))
    assert not adopt_server_budget(own, None)
    leaky = aiolimiter.AsyncLimiter(30, 30)
    assert not adopt_server_budget(adapt_rate_limit(leaky), (5, 3.0))
    assert (leaky.max_rate, leaky.time_period) == (30, 30)
    assert not adopt_server_budget(adapt_rate_limit(None), (5, 3.0))


@settings(max_examples=100, deadline=None)
@given(schedules, st.integers(1, 4), st.integers(1, 6), st.integers(0, 20))
# Found by CI: three requests granted at 0 under 3 per 3 s, then a budget of 1 per 1 s. The new
# window implies the old one only for a history that kept to it from the start.
@example(
    schedule=(3, 3, [Planned(arrival=0, hold=0, cancel_at=None, use_slot=False)] * 5),
    count=1,
    period=1,
    tighten_at=1,
)
def test_no_window_holds_more_than_any_budget_after_tightening(
    schedule: tuple[int, int, list[Planned]], count: int, period: int, tighten_at: int
) -> None:
    """After `tighten`, every grant fits every window in force, whatever the schedule."""
    max_requests, own_period, plan = schedule
    limiter = SlidingWindowLimiter(max_requests, own_period)

    def tighten(now: int) -> None:
        if now == tighten_at:
            limiter.tighten(count, period)

    outcomes = play(limiter, plan, each_second=tighten)

    # The stated budget and the configured window by name, not only what the limiter reports: a
    # tighten() that did nothing would report only its own window, and pass; one that replaced
    # the configured window would no longer report it.
    stated = (count, float(period))
    for window_count, window_period in {*limiter.limits, stated, (max_requests, own_period)}:
        used = [
            (o.granted, o.released + window_period)
            for o in outcomes
            if o.granted is not None and o.released is not None
        ]
        for start, _ in used:
            if start <= tighten_at:
                continue
            in_use = sum(1 for begin, end in used if begin <= start < end)
            assert in_use <= window_count, f"{in_use} in use at {start}: {used}"
