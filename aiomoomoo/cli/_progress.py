"""The command line's progress display: symbols, pages, rows, the quota wait and an ETA.

`QuotaClock` follows the client's sliding-window quota from the replies as they arrive (the
client counts each request until ``period`` after its reply), so the display can say "waiting for
quota" with the time left while every walk is held, and estimate when the rest can finish. The
display is drawn with ``rich.progress`` when ``rich`` is installed, else as one plain line
redrawn in place.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, TextIO

from .._many import Progress
from ._output import escape, terminal_width

__all__ = ["ProgressDisplay", "QuotaClock", "duration", "keep_ticking", "open_progress"]

#: Seconds between redraws while nothing arrives (the quota countdown).
TICK: Final = 0.25


class QuotaClock:
    """At most ``max_requests`` requests per sliding ``period``, seen from the replies.

    `record` each reply; `wait_left` is how long until the next request may go when the window
    is full, `eta` the least time until ``n`` more requests can have gone.
    """

    def __init__(
        self, max_requests: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_requests = max_requests
        self.period = period
        self.clock = clock
        self._replies: collections.deque[float] = collections.deque(maxlen=max_requests)

    def record(self) -> None:
        """Count one request whose reply has just arrived."""
        self._replies.append(self.clock())

    def _recent(self, now: float) -> list[float]:
        return [t for t in self._replies if t > now - self.period]

    def wait_left(self) -> float:
        """Seconds until a slot frees when every slot of the window is used, else 0."""
        now = self.clock()
        recent = self._recent(now)
        if len(recent) < self.max_requests:
            return 0.0
        return max(0.0, recent[0] + self.period - now)

    def eta(self, requests: int) -> float:
        """The least seconds until ``requests`` more requests can all have been sent."""
        if requests <= 0:
            return 0.0
        now = self.clock()
        recent = self._recent(now)
        # When each of the window's slots is next free: now, or a period after its reply.
        free_at = [now] * (self.max_requests - len(recent)) + [t + self.period for t in recent]
        last = requests - 1
        return max(
            0.0, free_at[last % self.max_requests] + self.period * (last // self.max_requests) - now
        )


def duration(seconds: float) -> str:
    """``"0.4 s"``, ``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``: tenths below 10 s, so a
    short countdown still moves."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class _Tracker:
    """Digests `Progress` reports into the numbers and the status text the displays show."""

    def __init__(self, quota: QuotaClock | None) -> None:
        self.quota = quota
        self.last: Progress | None = None
        self._pages: dict[str, int] = {}
        self._finished: set[str] = set()
        self._done_pages: list[int] = []

    def update(self, progress: Progress) -> None:
        self.last = progress
        if progress.event == "page":
            self._pages[progress.code] = self._pages.get(progress.code, 0) + 1
            if self.quota is not None:
                self.quota.record()
        else:
            self._finished.add(progress.code)
            if progress.event == "done":
                self._done_pages.append(self._pages.get(progress.code, 0))

    def remaining_requests(self) -> int | None:
        """Pages still to fetch, guessed from the symbols done so far; None before the first."""
        last = self.last
        if last is None or not self._done_pages:
            return None
        per_symbol = math.ceil(sum(self._done_pages) / len(self._done_pages))
        running = [code for code in self._pages if code not in self._finished]
        remaining = sum(max(per_symbol - self._pages[code], 1) for code in running)
        not_started = last.symbols_total - len(self._finished) - len(running)
        return remaining + per_symbol * max(not_started, 0)

    def waiting(self) -> float:
        finished = self.last is not None and self.last.symbols_done == self.last.symbols_total
        return 0.0 if self.quota is None or finished else self.quota.wait_left()

    def status(self) -> str:
        last = self.last
        if last is None:
            return "connecting"
        parts = [f"{last.pages} pages, {last.rows} rows"]
        wait = self.waiting()
        if wait > 0:
            parts.append(f"waiting for quota {duration(wait)}")
        else:
            parts.append(f"{escape(last.code)} {last.event}")
        remaining = self.remaining_requests()
        if self.quota is not None and remaining:
            eta = self.quota.eta(remaining)
            if eta >= 0.05:  # below that the quota is not what the rest waits for
                parts.append(f"ETA {duration(eta)}")
        return " · ".join(parts)


class ProgressDisplay(Protocol):
    """What `open_progress` returns: fed `Progress` reports, ticked while nothing arrives."""

    def update(self, progress: Progress) -> None: ...

    def tick(self) -> None: ...

    def close(self) -> None: ...


class _PlainLine:
    """One line on a terminal's stderr, redrawn in place; cleared at the end."""

    def __init__(self, stream: TextIO, tracker: _Tracker) -> None:
        self._stream = stream
        self._tracker = tracker
        self._width = terminal_width(stream)
        self._waited = False

    def update(self, progress: Progress) -> None:
        self._tracker.update(progress)
        self._draw()

    def tick(self) -> None:
        # Between replies only the quota countdown changes: redraw while it runs, and once
        # more when it ends.
        waiting = self._tracker.waiting() > 0
        if waiting or self._waited:
            self._draw()
        self._waited = waiting

    def _draw(self) -> None:
        last = self._tracker.last
        done, total = (last.symbols_done, last.symbols_total) if last else (0, 0)
        filled = int(20 * done / total) if total else 0
        bar = "#" * filled + "-" * (20 - filled)
        line = f"[{bar}] {done}/{total} symbols, {self._tracker.status()}"
        self._stream.write("\r" + line[: self._width - 1].ljust(self._width - 1))
        self._stream.flush()

    def close(self) -> None:
        self._stream.write("\r" + " " * (self._width - 1) + "\r")
        self._stream.flush()


class _RichBar:
    """A ``rich.progress`` bar on a terminal's stderr; it disappears at the end."""

    def __init__(self, stream: TextIO, tracker: _Tracker) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._tracker = tracker
        console = Console(file=stream, highlight=False, emoji=False, markup=False)
        self._progress: Any = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("symbols"),
            TextColumn("{task.fields[status]}", markup=False),
            console=console,
            transient=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("", total=None, status=tracker.status())
        self._progress.start()

    def update(self, progress: Progress) -> None:
        self._tracker.update(progress)
        self._draw()

    def tick(self) -> None:
        self._draw()

    def _draw(self) -> None:
        last = self._tracker.last
        total = last.symbols_total if last else None
        done = last.symbols_done if last else 0
        self._progress.update(
            self._task, completed=done, total=total, status=self._tracker.status()
        )
        self._progress.refresh()

    def close(self) -> None:
        self._progress.stop()


def open_progress(
    stream: TextIO, *, quota: tuple[int, float] | None, use_rich: bool = True
) -> ProgressDisplay:
    """A progress display on the terminal ``stream``, following ``quota`` (N, seconds)."""
    tracker = _Tracker(QuotaClock(*quota) if quota is not None else None)
    if use_rich:
        try:
            return _RichBar(stream, tracker)
        except ImportError:
            pass
    return _PlainLine(stream, tracker)


async def keep_ticking(display: ProgressDisplay, interval: float | None = None) -> None:
    """Tick ``display`` every ``interval`` seconds (default `TICK`) until cancelled."""
    while True:
        await asyncio.sleep(TICK if interval is None else interval)
        display.tick()
