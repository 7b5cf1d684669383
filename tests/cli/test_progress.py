"""The progress display's figures: requests sent, the quota wait and the ETA come from the
client's own limiter, here on a loop whose clock moves only when the test says so; and the bar
draws those figures, not only their labels."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable

import pytest

from aiomoomoo import SlidingWindowLimiter
from aiomoomoo._many import Progress
from aiomoomoo.cli._progress import Figures, ProgressDisplay, Tracker, duration
from aiomoomoo.store import SyncProgress

from .._fakes import FakeClock

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_fake_clock(scenario: Callable[[FakeClock], Awaitable[None]]) -> None:
    """Run ``scenario`` on an asyncio loop whose time is a `FakeClock` at 100."""

    async def main() -> None:
        with FakeClock(100.0).on_loop() as clock:
            await scenario(clock)

    asyncio.run(main())


async def spend(limiter: SlidingWindowLimiter, clock: FakeClock, *replies: float) -> None:
    """One request per reply time: granted, then answered at that time."""
    for at in replies:
        clock.now = at
        async with limiter.slot():
            pass


def synced(requests: int, rows: int, done: int, total: int) -> SyncProgress:
    return SyncProgress("page", "US.AAPL", requests, rows, 0, done, total, 0.0)


def test_the_wait_and_the_eta_are_the_limiters_own() -> None:
    async def scenario(clock: FakeClock) -> None:
        limiter = SlidingWindowLimiter(3, 10.0)
        tracker = Tracker(2, expected=7)
        tracker.watch(limiter)
        # Three free slots: three go now, three when the window frees at 110, one at 120.
        assert tracker.figures() == Figures(0, 2, 0, 0, 0.0, 20.0)
        await spend(limiter, clock, 100.0, 101.0, 102.0)
        tracker.synced(synced(3, 150, 0, 2))
        clock.now = 103.0
        held = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        assert limiter.queued == 1
        figures = tracker.figures()
        # Replies at 100, 101 and 102: the first slot frees at 110, 7 s from now.
        assert figures.waiting == pytest.approx(7.0)
        assert figures.sent == 3  # the held request is not sent
        # 4 to go, of which one is held: they can go at 110, 111, 112 and 120.
        assert figures.eta == pytest.approx(17.0)
        assert figures.status() == (
            "3 requests sent · 150 rows · waiting for quota 7.0 s · ETA 17 s"
        )
        clock.now = 110.5
        for _ in range(3):
            await asyncio.sleep(0)
        assert held.done()
        figures = tracker.figures()
        assert (figures.sent, figures.waiting) == (4, 0.0)
        assert "waiting for quota" not in figures.status()

    on_fake_clock(scenario)


def test_the_eta_is_the_least_time_the_quota_allows() -> None:
    async def scenario(clock: FakeClock) -> None:
        limiter = SlidingWindowLimiter(3, 10.0)
        for expected, eta in ((0, 0.0), (3, 0.0), (4, 10.0), (7, 20.0)):
            tracker = Tracker(1, expected=expected)
            tracker.watch(limiter)
            assert tracker.figures().eta == pytest.approx(eta)
        # At least one request per code not done, whatever the plan said.
        tracker = Tracker(5, expected=2)
        tracker.watch(limiter)
        assert tracker.figures().eta == pytest.approx(10.0)
        await spend(limiter, clock, 100.0)
        clock.now = 104.0
        for expected, eta in ((2, 0.0), (3, 6.0), (4, 10.0), (6, 16.0)):
            tracker = Tracker(1, expected=expected)
            tracker.watch(limiter)
            # Two free slots now, the third frees at 110, then each a period later.
            assert tracker.figures().eta == pytest.approx(eta)

    on_fake_clock(scenario)


def test_without_a_plan_the_eta_follows_the_pages_of_the_codes_done() -> None:
    async def scenario(clock: FakeClock) -> None:
        limiter = SlidingWindowLimiter(3, 10.0)
        tracker = Tracker(3)
        tracker.watch(limiter)
        pages = 0
        for code in ("US.AAPL",) * 4 + ("HK.00700",):
            pages += 1
            tracker.fetched(Progress("page", code, pages, 50 * pages, 0, 3))
        assert tracker.figures().eta is None  # no code done yet: no estimate
        tracker.fetched(Progress("done", "US.AAPL", pages, 50 * pages, 1, 3))
        figures = tracker.figures()
        # 4 pages a code: 3 more for HK.00700, 4 for the code not started; 7 fresh requests.
        assert figures.eta == pytest.approx(20.0)
        assert (figures.codes_done, figures.codes_total, figures.rows) == (1, 3, 250)
        assert figures.status() == "0 requests sent · 250 rows · ETA 20 s"

    on_fake_clock(scenario)


def test_nothing_waits_once_every_code_is_done() -> None:
    async def scenario(clock: FakeClock) -> None:
        limiter = SlidingWindowLimiter(1, 10.0)
        tracker = Tracker(1, expected=5)
        tracker.watch(limiter)
        await spend(limiter, clock, 100.0)
        tracker.synced(synced(1, 50, 1, 1))
        assert tracker.figures() == Figures(1, 1, 1, 50, 0.0, None)

    on_fake_clock(scenario)


def test_the_bar_draws_the_figures() -> None:
    pytest.importorskip("rich")
    from rich.console import Console

    async def scenario(clock: FakeClock) -> None:
        screen = io.StringIO()
        console = Console(file=screen, force_terminal=True, width=200, color_system=None)
        limiter = SlidingWindowLimiter(3, 10.0)
        display = ProgressDisplay(console, Tracker(2, expected=7))
        display.tracker.watch(limiter)

        def drawn() -> str:
            """The last frame the bar drew."""
            frames = ANSI.sub("", screen.getvalue()).replace("\r", "\n").splitlines()
            return [frame for frame in frames if frame.strip()][-1]

        display.tick()
        assert drawn().endswith(" 0/2 codes 0 requests sent · 0 rows · ETA 20 s")
        await spend(limiter, clock, 100.0, 101.0, 102.0)
        display.synced(synced(3, 150, 1, 2))
        clock.now = 103.0
        held = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        display.tick()
        # One code of two; the held request not yet sent; the quota frees a slot at 110.
        assert drawn().endswith(
            " 1/2 codes 3 requests sent · 150 rows · waiting for quota 7.0 s · ETA 17 s"
        )
        clock.now = 108.5  # no report: the countdown moves on the tick alone
        display.tick()
        assert drawn().endswith(
            " 1/2 codes 3 requests sent · 150 rows · waiting for quota 1.5 s · ETA 12 s"
        )
        held.cancel()
        display.close()

    on_fake_clock(scenario)


def test_durations_read_as_a_person_would_say_them() -> None:
    assert [duration(s) for s in (-0.01, 0.24, 9.9, 41.2, 65, 3725)] == [
        "0.0 s",
        "0.2 s",
        "9.9 s",
        "42 s",
        "1 min 05 s",
        "1 h 02 min",
    ]
