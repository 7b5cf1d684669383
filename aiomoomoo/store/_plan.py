"""What a sync will ask for: which codes are due, and how many requests that should take.

Pure functions of what the store holds of each code (`CodeState`), of each market's frontier
(`Frontier`: the newest date any code holds) and of the day: no file, no clock unless ``today``
is left out. `SyncPlan` is what ``aiomoomoo sync --dry-run`` prints and what a sync then does
first: the codes it requests (new, unfinished or failed codes, codes behind their market's
frontier, and a few probes once a publication is possible) and those it skips, with the
requests expected. When a probe finds a newer date, the sync asks the rest of that market in
the same run (`aiomoomoo.store._sync`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

from .._options import MAX_NUM
from .._security import Market, Security

__all__ = [
    "CATCH_UP_DAYS",
    "GUESSED_PAGES",
    "MIN_PUBLICATION_LAG",
    "PROBES",
    "RECENT_DATES",
    "CodeState",
    "Frontier",
    "MarketOutlook",
    "SyncPlan",
    "add_business_days",
    "check_today",
    "choose_probes",
    "expected_requests",
    "frontiers_of",
    "is_due",
    "is_wanted",
    "make_plan",
    "next_due",
    "next_publication",
    "next_settlement",
]

#: Pages a history of a code never synced is guessed to take, by market, until the store holds
#: complete histories of that market to learn the typical length from.
GUESSED_PAGES: Final = {Market.US: 4, Market.HK: 8}
# A settlement date that falls on a weekend or holiday moves to the business day before; no run
# of closed days is longer than this, so a row is never earlier than its nominal date minus it.
_US_SLACK: Final = dt.timedelta(days=5)

#: Codes of a market asked, once its next publication is possible, whether it has happened.
PROBES: Final = 3
#: Business days after a market's frontier moved during which codes still behind it are asked
#: on every run: a publication may reach some codes a day or two late.
CATCH_UP_DAYS: Final = 3
#: Probes are chosen among codes with rows at each of their market's this many newest dates.
RECENT_DATES: Final = 3
#: The fewest business days (Monday to Friday) after a settlement date before its publication:
#: FINRA publishes about 7 after, the SFC 5 (one week). One less than each, so that a settlement
#: date moved back by a holiday this planner does not know is not probed for a day late.
MIN_PUBLICATION_LAG: Final = {Market.US: 6, Market.HK: 4}


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
    #: The market's frontier when the code was last asked (None: never since the store has
    #: kept it).
    asked: dt.date | None = None
    #: Of the market's `RECENT_DATES` newest dates, how many the code has rows for (0 when
    #: not read: only choosing probes needs it).
    recent: int = 0


@dataclass(frozen=True, slots=True)
class Frontier:
    """A market's frontier: the ``newest`` date any of its stored codes holds, and the day
    (the market's date) a sync first saw it, ``moved`` (None when no sync recorded it)."""

    newest: dt.date
    moved: dt.date | None


@dataclass(frozen=True, slots=True)
class MarketOutlook:
    """What a plan knows of one market: its ``frontier`` (None before any row is stored),
    the first day its ``next_publication`` can be out (None without a frontier), and the
    ``probes`` requested to see whether it is."""

    frontier: Frontier | None
    next_publication: dt.date | None
    probes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync of some codes would do now.

    ``due`` are the codes it requests (in the order given), ``skipped`` those not due yet;
    ``requests`` is the number of requests expected, of which the histories of ``unknown``
    codes (never synced) are guessed from the store's complete histories of their market.
    ``probes`` (among ``due``) are asked whether a market's next publication is out; if one
    finds it, the sync also asks that market's skipped codes, ``follow_up`` requests at most.
    ``markets`` has each market's `MarketOutlook`.
    """

    due: tuple[str, ...]
    skipped: tuple[str, ...]
    requests: int
    unknown: int
    probes: tuple[str, ...] = ()
    follow_up: int = 0
    markets: Mapping[Market, MarketOutlook] = field(default_factory=dict)


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
    """Whether the settlement-date rule of earlier releases requested a code in ``state``
    (None: never synced): never synced, unfinished, failed last time, without rows, or
    `next_due` reached by ``today`` (the market's current date when None).

    Syncs now use `is_wanted` and probes; this rule stays for the benchmark that compares them.
    """
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
    frontiers: Mapping[Market, Frontier] | None = None,
    every: bool = False,
) -> SyncPlan:
    """What a sync of ``securities`` does first, given each stored code's state and each
    market's recorded frontier (see `SyncPlan`, `frontiers_of` and `is_wanted`).

    ``full`` or ``every`` request every code. ``today`` is the day to plan for (each market's
    current date when None).
    """
    known = frontiers_of(states, frontiers or {})
    days = {m: today if today is not None else market_today(m) for m in Market}
    wanted = full or every
    due = [
        s
        for s in securities
        if wanted or is_wanted(states.get(s.code), known.get(s.market), days[s.market])
    ]
    due_codes = {s.code for s in due}
    outlook: dict[Market, MarketOutlook] = {}
    probes: list[Security] = []
    for market in Market:
        frontier = known.get(market)
        upcoming = None if frontier is None else next_publication(market, frontier.newest)
        chosen: tuple[Security, ...] = ()
        if not wanted and upcoming is not None and days[market] >= upcoming:
            chosen = choose_probes(market, securities, states, due_codes)
        probes += chosen
        outlook[market] = MarketOutlook(frontier, upcoming, tuple(s.code for s in chosen))
    probe_codes = {s.code for s in probes}
    due_codes |= probe_codes
    due = [s for s in securities if s.code in due_codes]
    requests, unknown = expected_requests(due, states, full=full)
    probed = {s.market for s in probes}
    return SyncPlan(
        due=tuple(s.code for s in due),
        skipped=tuple(s.code for s in securities if s.code not in due_codes),
        requests=requests,
        unknown=unknown,
        probes=tuple(s.code for s in securities if s.code in probe_codes),
        follow_up=sum(s.market in probed and s.code not in due_codes for s in securities),
        markets=outlook,
    )


# -- frontiers and probes -------------------------------------------------------------------


def add_business_days(day: dt.date, days: int) -> dt.date:
    """``days`` business days (Monday to Friday; holidays are not known) after ``day``."""
    while days > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def next_settlement(market: Market, newest: dt.date) -> dt.date:
    """The latest day the reporting date after ``newest`` can fall on: for US the next 15th or
    month-end (moved back off a weekend), for HK the Friday of the week after ``newest``'s.

    A holiday can only move a reporting date earlier, never later, than the day returned.
    """
    if market is Market.HK:
        return newest + dt.timedelta(days=4 - newest.weekday() + 7)
    nominal = _us_nominal_on_or_after(newest)
    if newest >= nominal - _US_SLACK:
        nominal = _us_nominal_on_or_after(nominal + dt.timedelta(days=1))
    return nominal - dt.timedelta(days=max(0, nominal.weekday() - 4))


def next_publication(market: Market, newest: dt.date) -> dt.date:
    """The first day a ``market`` publication newer than ``newest`` (its frontier) can be out:
    `next_settlement` plus the market's `MIN_PUBLICATION_LAG` business days."""
    return add_business_days(next_settlement(market, newest), MIN_PUBLICATION_LAG[market])


def frontiers_of(
    states: Mapping[str, CodeState], recorded: Mapping[Market, Frontier]
) -> dict[Market, Frontier]:
    """Each market's frontier: the newest date its stored codes hold, with the day it moved as
    ``recorded`` (a frontier newer than the one recorded has ``moved`` None). A market whose
    codes hold no rows has none."""
    newest: dict[Market, dt.date] = {}
    for state in states.values():
        if state.newest is not None and state.newest > newest.get(state.market, dt.date.min):
            newest[state.market] = state.newest
    known = {}
    for market, day in newest.items():
        before = recorded.get(market)
        known[market] = (
            before if before is not None and before.newest >= day else Frontier(day, None)
        )
    return known


def is_wanted(state: CodeState | None, frontier: Frontier | None, today: dt.date) -> bool:
    """Whether a sync (without ``full`` or ``every``) asks a code in ``state`` (None: never
    synced) on ``today``, its market at ``frontier``; probes aside.

    Asked: a code never synced, unfinished or failed last time; and a code behind the frontier
    (older rows or none) that was not asked since the frontier moved, or on each run until
    `CATCH_UP_DAYS` business days after it moved. A code at the frontier is not asked: probes
    tell when the next publication is out. A frontier after ``today`` is no publication:
    then `is_due` decides.
    """
    if state is None or state.failed or not state.complete:
        return True
    if frontier is None:
        return state.newest is None
    if frontier.newest > today:
        # Nothing is published before its date: rows dated after today are no publication
        # (or ``today`` is wrong), so the schedule cannot be trusted; settlement dates decide.
        return is_due(state, state.market, today)
    if state.newest is not None and state.newest >= frontier.newest:
        return False
    if state.asked is None or state.asked < frontier.newest:
        return True
    return frontier.moved is not None and today <= add_business_days(frontier.moved, CATCH_UP_DAYS)


def choose_probes(
    market: Market,
    securities: Sequence[Security],
    states: Mapping[str, CodeState],
    due: set[str],
) -> tuple[Security, ...]:
    """Up to `PROBES` of ``market``'s ``securities`` to ask whether a publication is out:
    complete codes that did not fail, not already ``due``, those with the newest rows first,
    then those with rows at more of the recent dates, then in the order given."""
    ranked = []
    for index, security in enumerate(securities):
        state = states.get(security.code)
        if (
            security.market is not market
            or security.code in due
            or state is None
            or state.newest is None
            or state.failed
            or not state.complete
        ):
            continue
        ranked.append((-state.newest.toordinal(), -state.recent, index, security))
    ranked.sort(key=lambda item: item[:3])
    return tuple(item[3] for item in ranked[:PROBES])
