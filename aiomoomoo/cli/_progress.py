"""The one progress display of ``short-interest`` and ``sync``: codes done, requests sent, rows,
a live "waiting for quota" and an ETA.

The quota figures are the client's own limiter's (`aiomoomoo.SlidingWindowLimiter`): requests
sent are the slots it granted (a request waiting for one is not sent), the wait is how long the
requests it holds still wait, and the ETA is its `eta` for the requests still expected. The
counts come from the commands' progress reports. ``rich.progress`` draws it on a terminal's
stderr; without rich, `aiomoomoo.cli._terminal.rich_console` says in one line how to get it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO

from .._many import Progress
from .._quota import SlidingWindowLimiter
from ._terminal import rich_console

if TYPE_CHECKING:
    from .._client import Client
    from ..store import SyncProgress

__all__ = ["Figures", "ProgressDisplay", "QuotaFigures", "Tracker", "duration", "progress_on"]

#: Seconds between redraws while nothing arrives (the quota countdown).
TICK: Final = 0.25
#: An ETA below this is not the quota's doing, and not shown.
_SHOWN_ETA: Final = 0.05


def duration(seconds: float) -> str:
    """``"0.4 s"``, ``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``: tenths below 10 s, so a
    short countdown still moves. Every duration the command line prints is in this form."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class QuotaFigures(Protocol):
    """What the display reads from the client's limiter (`aiomoomoo.SlidingWindowLimiter`)."""

    @property
    def granted(self) -> int: ...

    @property
    def queued(self) -> int: ...

    def eta(self, requests: int) -> float: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers the display shows: codes done of all, requests sent, rows, the seconds the
    requests held by the quota still wait (0 when none is held), and the ETA (None until there
    is an estimate)."""

    codes_done: int
    codes_total: int
    sent: int
    rows: int
    waiting: float
    eta: float | None

    def status(self) -> str:
        """The figures as the display's text, e.g. ``12 requests sent · 559 rows · waiting for
        quota 4.2 s · ETA 1 min 05 s``."""
        parts = [f"{self.sent:,} requests sent", f"{self.rows:,} rows"]
        if self.waiting > 0:
            parts.append(f"waiting for quota {duration(self.waiting)}")
        if self.eta is not None and self.eta >= _SHOWN_ETA:
            parts.append(f"ETA {duration(self.eta)}")
        return " · ".join(parts)


class Tracker:
    """Digests progress reports and the limiter's state into `Figures`.

    ``expected`` is the requests the whole run is expected to take (a sync's plan); without it
    (``short-interest``) the pages still to come are guessed from the codes done so far.
    """

    def __init__(self, codes_total: int, *, expected: int | None = None) -> None:
        self.codes_total = codes_total
        self.expected = expected
        self.limiter: QuotaFigures | None = None
        self._granted_before = 0
        self._reported = 0  # requests the reports counted, for a limiter-less client
        self._rows = 0
        self._done = 0
        self._pages: dict[str, int] = {}
        self._finished: set[str] = set()
        self._done_pages: list[int] = []

    def watch(self, limiter: QuotaFigures) -> None:
        """Take the quota figures from ``limiter`` (the client's) from now on."""
        self.limiter = limiter
        self._granted_before = limiter.granted

    def fetched(self, progress: Progress) -> None:
        """Count a `fetch_short_interest_many` report."""
        if progress.event == "page":
            self._pages[progress.code] = self._pages.get(progress.code, 0) + 1
        else:
            self._finished.add(progress.code)
            if progress.event == "done":
                self._done_pages.append(self._pages.get(progress.code, 0))
        self._reported, self._rows = progress.pages, progress.rows
        self._done = progress.symbols_done

    def synced(self, progress: SyncProgress) -> None:
        """Count a `ShortInterestStore.sync` report."""
        self._reported = progress.requests
        self._rows = progress.rows_new + progress.rows_revised
        self._done = progress.codes_done

    def sent(self) -> int:
        if self.limiter is None:
            return self._reported
        return self.limiter.granted - self._granted_before

    def _remaining(self, sent: int, queued: int) -> int | None:
        """Requests still to send beyond those queued; None before there is an estimate."""
        left = self.codes_total - self._done
        if self.expected is not None:
            return max(self.expected - sent, left) - queued
        if not self._done_pages:
            return None
        per_code = math.ceil(sum(self._done_pages) / len(self._done_pages))
        running = [code for code in self._pages if code not in self._finished]
        remaining = sum(max(per_code - self._pages[code], 1) for code in running)
        not_started = max(self.codes_total - len(self._finished) - len(running), 0)
        return remaining + per_code * not_started - queued

    def figures(self) -> Figures:
        """What the display shows now."""
        sent, waiting, eta = self.sent(), 0.0, None
        finished = self._done >= self.codes_total
        limiter = self.limiter
        if limiter is not None and not finished:
            queued = limiter.queued
            # The time until every request now held may go: the queue's own ETA.
            waiting = limiter.eta(0) if queued else 0.0
            remaining = self._remaining(sent, queued)
            if remaining is not None:
                eta = limiter.eta(max(remaining, 0))
        return Figures(self._done, self.codes_total, sent, self._rows, waiting, eta)


class ProgressDisplay:
    """A ``rich.progress`` bar on a terminal's stderr, fed by a `Tracker`; it disappears at
    the end. `tick` redraws between reports, so the quota countdown moves."""

    def __init__(self, console: Any, tracker: Tracker) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.tracker = tracker
        self._progress: Any = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("codes"),
            TextColumn("{task.fields[status]}", markup=False),
            console=console,
            transient=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(
            "", total=tracker.codes_total, status=tracker.figures().status()
        )
        self._progress.start()

    def watch(self, client: Client) -> None:
        """Read the quota figures from ``client``'s limiter."""
        limiter = client.rate_limiter
        if isinstance(limiter, SlidingWindowLimiter):
            self.tracker.watch(limiter)

    def fetched(self, progress: Progress) -> None:
        self.tracker.fetched(progress)
        self.tick()

    def synced(self, progress: SyncProgress) -> None:
        self.tracker.synced(progress)
        self.tick()

    def tick(self) -> None:
        figures = self.tracker.figures()
        self._progress.update(self._task, completed=figures.codes_done, status=figures.status())
        self._progress.refresh()

    async def keep_ticking(self, interval: float | None = None) -> None:
        """`tick` every ``interval`` seconds (default `TICK`) until cancelled."""
        while True:
            await asyncio.sleep(TICK if interval is None else interval)
            self.tick()

    def close(self) -> None:
        self._progress.stop()


@contextmanager
def progress_on(
    stream: TextIO, codes_total: int, *, expected: int | None = None
) -> Iterator[ProgressDisplay | None]:
    """The display on ``stream`` when it is a terminal and rich is installed, else None."""
    console = rich_console(stream) if stream.isatty() else None
    if console is None:
        yield None
        return
    display = ProgressDisplay(console, Tracker(codes_total, expected=expected))
    try:
        yield display
    finally:
        display.close()


@contextmanager
def ticking(display: ProgressDisplay | None) -> Iterator[None]:
    """Within a running loop: tick ``display`` (if any) until the block ends."""
    if display is None:
        yield
        return
    task = asyncio.get_running_loop().create_task(display.keep_ticking())
    try:
        yield
    finally:
        task.cancel()
