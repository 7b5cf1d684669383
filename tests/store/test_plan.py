"""The sync's planning, pure: the not-due rule against every reporting day the simulator's
calendar makes, which codes are due from their stored state on an injected day, and the
requests a sync is expected to send."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from aiomoomoo import Market, next_due
from aiomoomoo._security import parse_code
from aiomoomoo.store._plan import (
    CATCH_UP_DAYS,
    GUESSED_PAGES,
    PROBES,
    CodeState,
    Frontier,
    MarketOutlook,
    add_business_days,
    check_today,
    expected_requests,
    frontiers_of,
    is_due,
    is_wanted,
    make_plan,
    next_publication,
    next_settlement,
)
from aiomoomoo.testing import (
    BUILTIN_PROFILES,
    PUBLICATION_LAGS,
    HkRow,
    UsRow,
    generate_history,
)
from aiomoomoo.testing._publication import published_on


@pytest.mark.parametrize(
    ("market", "newest", "due"),
    [
        # US: a settlement date's row is followed by the next 15th or month-end, at the earliest
        # five days before it (a weekend or holiday moves it back).
        (Market.US, dt.date(2026, 4, 30), dt.date(2026, 5, 10)),
        (Market.US, dt.date(2026, 5, 15), dt.date(2026, 5, 26)),
        (Market.US, dt.date(2026, 2, 27), dt.date(2026, 3, 10)),  # Feb 28 was a Saturday
        (Market.US, dt.date(2026, 2, 13), dt.date(2026, 2, 23)),  # Feb 15 was a Sunday
        # Off the schedule: anything later is possible, so it is due the next day.
        (Market.US, dt.date(2026, 4, 20), dt.date(2026, 4, 21)),
        # Five days before the 15th can still be the 15th moved back; six cannot.
        (Market.US, dt.date(2026, 4, 10), dt.date(2026, 4, 25)),
        (Market.US, dt.date(2026, 4, 9), dt.date(2026, 4, 10)),
        # HK: one row a week, so nothing before the next Monday.
        (Market.HK, dt.date(2026, 4, 30), dt.date(2026, 5, 4)),  # a Thursday (May 1 holiday)
        (Market.HK, dt.date(2026, 4, 24), dt.date(2026, 4, 27)),
    ],
)
def test_next_due(market: Market, newest: dt.date, due: dt.date) -> None:
    assert next_due(market, newest) == due


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
def test_next_due_never_skips_a_reporting_day(code: str) -> None:
    # Every consecutive pair of rows over 27 years of the simulator's calendar (weekends and
    # holidays included): the rule must make the newer row's day due, or a sync would miss it.
    rows: list[UsRow | HkRow] = generate_history(  # type: ignore[assignment]
        code, BUILTIN_PROFILES[code], start=dt.date(2000, 1, 1), as_of=dt.date(2026, 12, 31)
    )
    market = Market[code[:2]]
    days = [dt.date.fromisoformat(str(row.timestamp_str)) for row in reversed(rows)]
    assert len(days) > 600
    for older, newer in itertools.pairwise(days):
        assert older < next_due(market, older) <= newer, (older, newer)


# -- is a code due? ---------------------------------------------------------------------------

NEWEST = dt.date(2026, 4, 30)  # a US settlement date; the next US row cannot come before May 10
DUE = next_due(Market.US, NEWEST)


def state(
    rows: int = 176,
    *,
    newest: dt.date | None = NEWEST,
    complete: bool = True,
    failed: bool = False,
    market: Market = Market.US,
    asked: dt.date | None = None,
    recent: int = 0,
) -> CodeState:
    return CodeState(market, rows, newest, complete, failed, asked, recent)


def test_a_complete_code_is_due_on_its_due_day_itself_and_not_the_day_before() -> None:
    assert dt.date(2026, 5, 10) == DUE
    assert not is_due(state(), Market.US, DUE - dt.timedelta(days=1))
    assert is_due(state(), Market.US, DUE)
    assert is_due(state(), Market.US, DUE + dt.timedelta(days=30))
    # An HK code goes by the HK rule: due on the Monday after its newest row, days before a
    # US code with the same newest date would be.
    hk = state(383, market=Market.HK)
    monday = dt.date(2026, 5, 4)
    assert not is_due(hk, Market.HK, monday - dt.timedelta(days=1))
    assert is_due(hk, Market.HK, monday)


@pytest.mark.parametrize(
    "stored",
    [
        None,  # never synced
        state(failed=True),  # failed last time, though it has rows and is complete
        state(complete=False),  # an unfinished backfill
        state(0, newest=None),  # complete but without rows: nothing to date the next one by
    ],
    ids=["never-synced", "failed-last-time", "unfinished", "no-rows"],
)
def test_a_code_is_due_whatever_the_day_when(stored: CodeState | None) -> None:
    assert is_due(stored, Market.US, NEWEST)


def test_without_today_the_market_date_decides() -> None:
    # The stored row is far in the past, so whatever today is, the code is due; and a row of
    # the far future never is.
    assert is_due(state(newest=dt.date(2000, 1, 14)), Market.US, None)
    assert not is_due(state(newest=dt.date(2999, 12, 31)), Market.US, None)


def test_today_must_be_a_date() -> None:
    assert check_today(None) is None
    assert check_today(NEWEST) == NEWEST
    with pytest.raises(TypeError, match=r"today must be a datetime\.date"):
        check_today(dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    with pytest.raises(TypeError, match="today must be"):
        check_today("2026-05-01")


def test_the_plan_lists_due_and_skipped_codes_in_the_order_given() -> None:
    codes = [parse_code(c) for c in ("US.TSLA", "US.AAPL", "HK.00700", "US.NVDA")]
    states = {
        "US.TSLA": state(),
        "US.AAPL": state(failed=True),
        "HK.00700": state(383, newest=dt.date(2026, 4, 30), market=Market.HK),
    }
    plan = make_plan(codes, states, full=False, today=NEWEST)
    assert plan.due == ("US.AAPL", "US.NVDA")
    assert plan.skipped == ("US.TSLA", "HK.00700")
    # US.AAPL is complete (its first page only), US.NVDA was never synced (learned from the
    # market's complete histories: 176 rows, 4 pages).
    assert (plan.requests, plan.unknown) == (1 + 4, 1)
    everything = make_plan(codes, states, full=True, today=NEWEST)
    assert everything.due == tuple(c.code for c in codes)
    assert everything.skipped == ()
    assert everything.requests == 4 + 4 + 8 + 4


# -- how many requests ------------------------------------------------------------------------


def test_a_code_never_synced_is_guessed_until_complete_histories_teach_the_length() -> None:
    due = [parse_code("US.AAPL"), parse_code("HK.00700")]
    assert expected_requests(due, {}, full=False) == (
        GUESSED_PAGES[Market.US] + GUESSED_PAGES[Market.HK],
        2,
    )
    learned = {
        "US.TSLA": state(500),  # 10 pages
        "US.NVDA": state(300),  # 6 pages
        "HK.09988": state(50, market=Market.HK),
        "US.HALF": state(1000, complete=False),  # not complete: teaches nothing
    }
    assert expected_requests(due, learned, full=False) == (8 + 1, 2)
    # A code that failed before anything was stored is still a history never seen.
    failed = {"US.AAPL": state(0, newest=None, complete=False, failed=True)}
    assert expected_requests(due[:1], failed, full=False) == (GUESSED_PAGES[Market.US], 1)


def test_a_complete_code_takes_its_first_page_or_every_page_with_full() -> None:
    due = [parse_code("US.AAPL"), parse_code("US.EMPTY")]
    states = {"US.AAPL": state(176), "US.EMPTY": state(0, newest=None)}
    assert expected_requests(due, states, full=False) == (2, 0)
    assert expected_requests(due, states, full=True) == (4 + 1, 0)


@pytest.mark.parametrize(("stored_pages", "expected"), [(1, 1 + 7), (3, 1 + 5), (7, 1 + 1)])
def test_an_unfinished_backfill_takes_its_first_page_and_the_pages_not_stored(
    stored_pages: int, expected: int
) -> None:
    # An HK history of 8 pages, of which the first ``stored_pages`` were stored before the
    # sync was cut short: the next sync reads page 1 again, then jumps below what is stored.
    states = {"HK.00700": state(50 * stored_pages, complete=False, market=Market.HK)}
    due = [parse_code("HK.00700")]
    assert expected_requests(due, states, full=False) == (expected, 0)
    # full walks every page from the top.
    assert expected_requests(due, states, full=True) == (8, 0)


# -- the publication schedule: frontiers, catch-up and probes ---------------------------------


@pytest.mark.parametrize(
    ("market", "newest", "settlement", "publication"),
    [
        # US: the next 15th or month-end, off a weekend, then six weekdays (FINRA takes seven).
        (Market.US, dt.date(2026, 4, 30), dt.date(2026, 5, 15), dt.date(2026, 5, 25)),
        (Market.US, dt.date(2026, 5, 15), dt.date(2026, 5, 29), dt.date(2026, 6, 8)),  # 31st: Sun
        (Market.US, dt.date(2026, 2, 27), dt.date(2026, 3, 13), dt.date(2026, 3, 23)),  # 15th: Sun
        (Market.US, dt.date(2026, 4, 14), dt.date(2026, 4, 30), dt.date(2026, 5, 8)),  # moved 15th
        # HK: the Friday of the next week, then four weekdays (the SFC takes five).
        (Market.HK, dt.date(2026, 4, 24), dt.date(2026, 5, 1), dt.date(2026, 5, 7)),
        (Market.HK, dt.date(2026, 4, 30), dt.date(2026, 5, 8), dt.date(2026, 5, 14)),  # a Thu
    ],
)
def test_the_next_publication_is_the_next_settlement_date_plus_the_least_lag(
    market: Market, newest: dt.date, settlement: dt.date, publication: dt.date
) -> None:
    assert next_settlement(market, newest) == settlement
    assert next_publication(market, newest) == publication


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
def test_the_next_publication_is_never_expected_after_the_real_one(code: str) -> None:
    # Every consecutive pair of rows over 27 years of the simulator's calendar, holidays
    # included, published on the real lags: probes must start by the day the newer row is out,
    # and not before the older one was.
    rows: list[UsRow | HkRow] = generate_history(  # type: ignore[assignment]
        code, BUILTIN_PROFILES[code], start=dt.date(2000, 1, 1), as_of=dt.date(2026, 12, 31)
    )
    market = Market[code[:2]]
    lag = PUBLICATION_LAGS[market.name]
    days = [dt.date.fromisoformat(str(row.timestamp_str)) for row in reversed(rows)]
    for older, newer in itertools.pairwise(days):
        expected = next_publication(market, older)
        assert published_on(older, lag) < expected <= published_on(newer, lag), (older, newer)
        # At most a day early, unless a holiday moved the settlement date itself.
        assert add_business_days(expected, 1) >= published_on(newer, lag) or (
            newer != next_settlement(market, older)
        ), (older, newer)


FRONTIER = Frontier(dt.date(2026, 4, 30), moved=dt.date(2026, 5, 11))  # a Monday


def test_a_code_at_the_frontier_is_never_asked_but_probes_decide() -> None:
    at = state(asked=FRONTIER.newest, recent=3)
    for day in (
        dt.date(2026, 5, 11),
        dt.date(2026, 5, 12),
        dt.date(2026, 5, 25),
        dt.date(2027, 1, 4),
    ):
        assert not is_wanted(at, FRONTIER, day)
    # Asked before this store kept what codes were asked at: still at the frontier.
    assert not is_wanted(state(), FRONTIER, dt.date(2026, 5, 12))


@pytest.mark.parametrize(
    "stored",
    [None, state(failed=True), state(complete=False)],
    ids=["never-synced", "failed-last-time", "unfinished"],
)
def test_new_unfinished_and_failed_codes_are_always_asked(stored: CodeState | None) -> None:
    assert is_wanted(stored, FRONTIER, dt.date(2027, 1, 4))
    assert is_wanted(stored, None, dt.date(2027, 1, 4))


@pytest.mark.parametrize(
    "behind",
    [state(newest=dt.date(2026, 4, 15)), state(0, newest=None)],
    ids=["older-rows", "no-rows"],
)
def test_a_code_behind_the_frontier_is_asked_for_a_few_days_after_it_moved_then_not(
    behind: CodeState,
) -> None:
    # Not asked since the frontier moved: asked whatever the day.
    assert is_wanted(behind, FRONTIER, dt.date(2027, 1, 4))
    asked = dataclasses.replace(behind, asked=FRONTIER.newest)
    # Asked at this frontier: again on each run for CATCH_UP_DAYS business days after the move
    # (Monday 05-11: to Thursday 05-14), then not until the frontier moves once more.
    assert CATCH_UP_DAYS == 3
    for day in (dt.date(2026, 5, 11), dt.date(2026, 5, 12), dt.date(2026, 5, 14)):
        assert is_wanted(asked, FRONTIER, day), day
    for day in (dt.date(2026, 5, 15), dt.date(2026, 5, 18), dt.date(2026, 6, 30)):
        assert not is_wanted(asked, FRONTIER, day), day
    # A frontier no sync saw move (a store of an earlier release) has no catch-up days.
    assert not is_wanted(asked, Frontier(FRONTIER.newest, None), dt.date(2026, 5, 11))
    later = Frontier(dt.date(2026, 5, 15), dt.date(2026, 5, 26))
    assert is_wanted(asked, later, dt.date(2026, 6, 30))


def test_a_frontier_after_today_is_no_publication_and_settlement_dates_decide() -> None:
    # A row dated 2999 (hostile or broken data) must not leave every other code unasked for
    # ever once its catch-up days are over.
    future = Frontier(dt.date(2999, 12, 31), dt.date(2026, 5, 1))
    behind = state(asked=future.newest)
    assert is_wanted(behind, future, dt.date(2026, 6, 1))  # next_due: 2026-05-10
    assert not is_wanted(behind, future, dt.date(2026, 5, 9))


def test_the_frontier_is_the_newest_date_any_code_holds() -> None:
    states = {
        "US.A": state(newest=dt.date(2026, 4, 15)),
        "US.B": state(newest=dt.date(2026, 4, 30)),
        "US.C": state(0, newest=None),
        "HK.1": state(newest=dt.date(2026, 4, 24), market=Market.HK),
    }
    assert frontiers_of(states, {}) == {
        Market.US: Frontier(dt.date(2026, 4, 30), None),
        Market.HK: Frontier(dt.date(2026, 4, 24), None),
    }
    recorded = {Market.US: FRONTIER, Market.HK: Frontier(dt.date(2026, 4, 17), FRONTIER.moved)}
    # As recorded when the same; newer than recorded: not yet seen moving.
    assert frontiers_of(states, recorded) == {
        Market.US: FRONTIER,
        Market.HK: Frontier(dt.date(2026, 4, 24), None),
    }
    assert frontiers_of({"US.C": state(0, newest=None)}, {}) == {}


def schedule_states() -> dict[str, CodeState]:
    def at(recent: int, *, failed: bool = False) -> CodeState:
        return state(newest=FRONTIER.newest, asked=FRONTIER.newest, recent=recent, failed=failed)

    return {
        "US.A": at(1),  # a young history
        "US.B": at(3),
        "US.C": state(newest=dt.date(2026, 4, 15), asked=FRONTIER.newest, recent=2),
        "US.D": at(3),
        "US.E": at(3, failed=True),
        "US.F": at(3),
        "US.G": at(3),
        "HK.00001": state(newest=dt.date(2026, 5, 8), market=Market.HK, recent=3),
    }


SCHEDULE = [parse_code(c) for c in ("US.A", "US.B", "US.C", "US.D", "US.E", "US.F", "US.G")]


def test_before_the_next_publication_can_be_out_nothing_at_the_frontier_is_asked() -> None:
    recorded = {Market.US: FRONTIER}
    day = next_publication(Market.US, FRONTIER.newest) - dt.timedelta(days=1)
    plan = make_plan(SCHEDULE, schedule_states(), full=False, today=day, frontiers=recorded)
    assert plan.due == ("US.E",)  # failed last time
    assert plan.probes == ()
    assert plan.follow_up == 0
    outlook = plan.markets[Market.US]
    assert outlook == MarketOutlook(FRONTIER, dt.date(2026, 5, 25), ())


def test_once_it_can_be_out_three_probes_with_rows_at_each_recent_date() -> None:
    recorded = {Market.US: FRONTIER}
    day = next_publication(Market.US, FRONTIER.newest)
    plan = make_plan(SCHEDULE, schedule_states(), full=False, today=day, frontiers=recorded)
    # US.E is due anyway; US.C is behind; US.A has too few recent rows to be trusted first.
    assert PROBES == 3
    assert plan.probes == ("US.B", "US.D", "US.F")
    assert plan.due == ("US.B", "US.D", "US.E", "US.F")
    assert plan.skipped == ("US.A", "US.C", "US.G")
    assert plan.requests == 4
    # If a probe finds the publication, the rest of the market is asked in the same run.
    assert plan.follow_up == 3
    assert plan.markets[Market.US].probes == plan.probes
    # The HK code is not synced, but its rows make its market's frontier.
    hk = Frontier(dt.date(2026, 5, 8), None)
    assert plan.markets[Market.HK] == MarketOutlook(hk, dt.date(2026, 5, 21), ())


def test_few_codes_probe_with_what_there_is_and_full_or_every_asks_everything() -> None:
    codes = [parse_code(c) for c in ("US.A", "US.C", "HK.00001")]
    states = schedule_states()
    recorded = {Market.US: FRONTIER}
    day = dt.date(2026, 6, 1)
    plan = make_plan(codes, states, full=False, today=day, frontiers=recorded)
    assert plan.probes == ("US.A", "US.C", "HK.00001")
    for flags in ({"full": True}, {"full": False, "every": True}):
        plan = make_plan(codes, states, today=day, frontiers=recorded, **flags)
        assert plan.due == ("US.A", "US.C", "HK.00001")
        assert plan.probes == ()


def test_an_unfinished_backfill_longer_than_the_guess_counts_its_stored_pages() -> None:
    # 10 whole pages and part of an 11th stored, more than the 8 an HK history is guessed at:
    # full reads them all and the next one; without it, page 1 and the page below the stored.
    states = {
        "US.AAPL": state(176),
        "HK.00700": state(50 * 10 + 25, complete=False, market=Market.HK),
    }
    due = [parse_code("US.AAPL"), parse_code("HK.00700")]
    assert expected_requests(due, states, full=True) == (4 + 11, 0)
    assert expected_requests(due, states, full=False) == (1 + 2, 0)
