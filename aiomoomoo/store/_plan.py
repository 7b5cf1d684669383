"""What a sync will ask for: which codes are due, and how many requests that should take.

Pure functions of what the store holds of each code (`CodeState`) and of the day: no file, no
clock unless ``today`` is left out. `SyncPlan` is what ``aiomoomoo sync --dry-run`` prints and
what a sync then does: the codes it requests and the codes it skips as not due (see
`next_due`), with the requests expected.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from .._options import MAX_NUM
from .._security import Market, Security

__all__ = [
    "GUESSED_PAGES",
    "CodeState",
    "SyncPlan",
    "check_today",
    "expected_requests",
    "is_due",
    "make_plan",
    "next_due",
]

#: Pages a history of a code never synced is guessed to take, by market, until the store holds
#: complete histories of that market to learn the typical length from.
GUESSED_PAGES: Final = {Market.US: 4, Market.HK: 8}
# A settlement date that falls on a weekend or holiday moves to the business day before; no run
# of closed days is longer than this, so a row is never earlier than its nominal date minus it.
_US_SLACK: Final = dt.timedelta(days=5)


@dataclass(frozen=True, slots=True)
class CodeState:
    """What the store holds of one code: its market, its current ``rows`` and the ``newest``
    one's date, whether its whole history is stored (``complete``), and whether its last sync
    ended in an error (``failed``)."""

    market: Market
    rows: int
    newest: dt.date | None
    complete: bool
    failed: bool


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync of some codes would do now.

    ``due`` are the codes it requests (in the order given), ``skipped`` those not due yet;
    ``requests`` is the number of requests expected, of which the histories of ``unknown``
    codes (never synced) are guessed from the store's complete histories of their market.
    """

    due: tuple[str, ...]
    skipped: tuple[str, ...]
    requests: int
    unknown: int


# -- the not-due rule -----------------------------------------------------------------------


def _us_nominal_on_or_after(day: dt.date) -> dt.date:
    """The first 15th or month-end on or after ``day``."""
    if day.day <= 15:
        return day.replace(day=15)
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_due(market: Market, newest: dt.date) -> dt.date:
    """The first day on which a row newer than ``newest`` can exist for a ``market`` code.

    US rows fall on FINRA's settlement dates, the 15th and the month's last day, each moved back
    to a business day when needed (never by more than five days). If ``newest`` is one of them,
    the next row cannot be dated before the next nominal settlement date less those five days;
    a ``newest`` off that schedule makes any later day possible. HK rows are weekly, one per
    week (Friday, or an earlier day of the week when Friday is a holiday), so the next one
    cannot come before the Monday after ``newest``. A day before the returned one cannot have
    new rows; on or after it the code is requested.
    """
    if market is Market.HK:
        return newest + dt.timedelta(days=7 - newest.weekday())
    nominal = _us_nominal_on_or_after(newest)
    if newest < nominal - _US_SLACK:
        return newest + dt.timedelta(days=1)
    return _us_nominal_on_or_after(nominal + dt.timedelta(days=1)) - _US_SLACK


def check_today(today: object) -> dt.date | None:
    """``today`` as given, once checked to be a date (not a datetime) or None."""
    if today is not None and (not isinstance(today, dt.date) or isinstance(today, dt.datetime)):
        raise TypeError(f"today must be a datetime.date or None, got {today!r}")
    return today


def market_today(market: Market) -> dt.date:
    """The current date in ``market``'s own timezone."""
    return dt.datetime.now(ZoneInfo(market.timezone)).date()


def is_due(state: CodeState | None, market: Market, today: dt.date | None) -> bool:
    """Whether a sync (without ``full``) requests a code in ``state`` (None: never synced):
    never synced, unfinished, failed last time, without rows, or `next_due` reached by
    ``today`` (the market's current date when None)."""
    if state is None or state.failed or not state.complete or state.newest is None:
        return True
    day = today if today is not None else market_today(market)
    return day >= next_due(market, state.newest)


# -- the estimate -----------------------------------------------------------------------------


def expected_requests(
    due: Iterable[Security], states: Mapping[str, CodeState], *, full: bool
) -> tuple[int, int]:
    """(requests expected for the ``due`` codes, how many of them were never synced).

    A sync reads a complete code's first page only (it finds the stored rows there), and all
    its pages with ``full``. A code never synced, or synced with nothing stored, takes its whole
    history: as many pages as the market's complete histories take on average (or
    `GUESSED_PAGES`). An unfinished backfill reads its first page again, then continues below
    the stored rows: the history's expected pages less those stored, and at least one.
    """
    pages = dict(GUESSED_PAGES)
    for market in Market:
        complete = [s.rows for s in states.values() if s.complete and s.market is market]
        known = [math.ceil(rows / MAX_NUM) for rows in complete]
        if known:
            pages[market] = max(1, round(sum(known) / len(known)))
    expected = unknown = 0
    for security in due:
        state = states.get(security.code)
        typical = pages[security.market]
        if state is None or (state.rows == 0 and not state.complete):
            expected += typical
            unknown += 1
        elif state.complete:
            expected += max(1, math.ceil(state.rows / MAX_NUM)) if full else 1
        else:
            stored = state.rows // MAX_NUM
            expected += max(typical, stored + 1) if full else 1 + max(1, typical - stored)
    return expected, unknown


def make_plan(
    securities: Sequence[Security],
    states: Mapping[str, CodeState],
    *,
    full: bool,
    today: dt.date | None,
) -> SyncPlan:
    """What a sync of ``securities`` does, given each stored code's state (see `SyncPlan`)."""
    due = [s for s in securities if full or is_due(states.get(s.code), s.market, today)]
    due_codes = {s.code for s in due}
    requests, unknown = expected_requests(due, states, full=full)
    return SyncPlan(
        due=tuple(s.code for s in due),
        skipped=tuple(s.code for s in securities if s.code not in due_codes),
        requests=requests,
        unknown=unknown,
    )
