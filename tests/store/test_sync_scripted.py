"""`ShortInterestStore.sync` in process against a scripted stand-in for the client: pages given
as plain rows, failures on demand, every request recorded. No socket: what is pinned here is
what the sync does with the pages (an empty last page, a failure and the success after it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

from aiomoomoo import Client, RequestTimeoutError, ShortInterestStore, SyncProgress
from aiomoomoo._paging import ShortInterestPage
from aiomoomoo._rows import Rows, columns_for
from aiomoomoo._security import Market, parse_code
from aiomoomoo.store._plan import next_publication

pytestmark = pytest.mark.anyio

NEWEST = dt.date(2026, 4, 30)  # a US settlement date
NOT_DUE = dt.date(2026, 5, 1)
#: The first day the next US publication can be out: a code at the frontier is probed then.
DUE = next_publication(Market.US, NEWEST)


def us(day: int, shares_short: int = 1000) -> tuple[Any, ...]:
    """A US record of 2026-04-``day`` in `US_COLUMNS` order."""
    return (1_700_000_000 + day, f"2026-04-{day:02d}", shares_short, 1.5, 200, 2.0, 10.0, 9.5)


def hk(day: int, aggregated_short: int = 5000) -> tuple[Any, ...]:
    """An HK record of 2026-04-``day`` in `HK_COLUMNS` order."""
    return (1_700_000_000 + day, f"2026-04-{day:02d}", aggregated_short, 0.25, 400.0, 398.0)


def rows(market: Market, records: list[tuple[Any, ...]]) -> Rows:
    width = len(columns_for(market))
    values = tuple(zip(*records, strict=True)) if records else ((),) * width
    return Rows(market, len(records), values, (None,) * width)


class ScriptedClient:
    """Answers `get_short_interest` from ``pages``: per code, per key asked (None: the first
    page), the page's records and its next key. A code in ``failing`` times out instead."""

    rate_limiter = None

    def __init__(self, pages: dict[str, dict[str | None, tuple[list[tuple[Any, ...]], str]]]):
        self.pages = pages
        self.failing: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.nums: set[int | None] = set()

    async def get_short_interest(
        self, code: str, next_key: str | None = None, num: int | None = None
    ) -> ShortInterestPage:
        self.requests.append((code, next_key))
        self.nums.add(num)
        if code in self.failing:
            raise RequestTimeoutError("no reply in 5 s")
        security = parse_code(code)
        records, key = self.pages[code][next_key]
        us_rows, hk_rows = rows(Market.US, []), rows(Market.HK, [])
        if security.market is Market.US:
            us_rows = rows(Market.US, records)
        else:
            hk_rows = rows(Market.HK, records)
        return ShortInterestPage(security, key, us_rows, hk_rows)

    def sent(self) -> list[tuple[str, str | None]]:
        """The requests since the last call."""
        sent, self.requests = self.requests, []
        return sent


def as_client(scripted: ScriptedClient) -> Client:
    return cast(Client, scripted)


def state(store: ShortInterestStore, code: str = "US.AAPL") -> dict[str, Any]:
    return dict(store.summary().set_index("code").loc[code])


async def test_an_empty_last_page_ends_the_walk_and_the_history_is_complete(
    tmp_path: Path,
) -> None:
    # A history whose rows fill whole pages ends with an empty page: the walk stops there,
    # without an error, and the code is complete, so a later sync reads its first page only.
    scripted = ScriptedClient({"US.AAPL": {None: ([us(30), us(15)], "@2"), "@2": ([], "-1")}})
    with ShortInterestStore(tmp_path / "s.db") as store:
        report = await store.sync(as_client(scripted), ["US.AAPL"], today=NOT_DUE)
        assert (report.ok, report.synced, report.requests) == (True, ("US.AAPL",), 2)
        assert scripted.sent() == [("US.AAPL", None), ("US.AAPL", "@2")]
        stored = state(store)
        assert (stored["rows"], stored["complete"], stored["newest"]) == (2, True, "2026-04-30")
        assert pd.isna(stored["last_error"])
        report = await store.sync(as_client(scripted), ["US.AAPL"], today=NOT_DUE)
        assert (report.skipped, scripted.sent()) == (("US.AAPL",), [])
        report = await store.sync(as_client(scripted), ["US.AAPL"], today=DUE)
        assert (report.synced, scripted.sent()) == (("US.AAPL",), [("US.AAPL", None)])


async def test_a_code_that_failed_is_due_again_though_complete_and_a_success_clears_the_error(
    tmp_path: Path,
) -> None:
    scripted = ScriptedClient({"US.AAPL": {None: ([us(30), us(15)], "-1")}})
    with ShortInterestStore(tmp_path / "s.db") as store:
        await store.sync(as_client(scripted), ["US.AAPL"], today=NOT_DUE)
        first = state(store)
        assert (first["rows"], first["complete"], first["newest"]) == (2, True, "2026-04-30")
        # On its due day, the code's request times out: the rows stay, the error is kept.
        scripted.failing.add("US.AAPL")
        report = await store.sync(as_client(scripted), ["US.AAPL"], today=DUE)
        assert list(report.failures) == ["US.AAPL"]
        failed = state(store)
        assert (failed["rows"], failed["complete"]) == (2, True)
        assert failed["last_error"] == "RequestTimeoutError: no reply in 5 s"
        assert failed["last_synced"] == first["last_synced"]
        # A day on which the code would not be due, had it not failed: it is requested again.
        scripted.failing.clear()
        scripted.sent()
        assert store.plan(["US.AAPL"], today=NOT_DUE).due == ("US.AAPL",)
        report = await store.sync(as_client(scripted), ["US.AAPL"], today=NOT_DUE)
        assert (report.ok, report.synced, scripted.sent()) == (
            True,
            ("US.AAPL",),
            [("US.AAPL", None)],
        )
        again = state(store)
        assert pd.isna(again["last_error"])
        assert again["last_synced"] > first["last_synced"]
        # And, the error gone, it is not due on that day any more.
        assert store.plan(["US.AAPL"], today=NOT_DUE).skipped == ("US.AAPL",)


async def test_the_report_and_the_progress_count_what_the_sync_did(tmp_path: Path) -> None:
    scripted = ScriptedClient(
        {
            "US.TSLA": {None: ([us(30)], "-1")},
            "US.AAPL": {None: ([us(30), us(29), us(28)], "@3"), "@3": ([us(27)], "-1")},
            "HK.00700": {None: ([hk(24), hk(17)], "-1")},
        }
    )
    scripted.failing.add("US.NVDA")
    events: list[SyncProgress] = []
    codes = ["US.TSLA", "US.NVDA", "US.AAPL", "HK.00700"]
    with ShortInterestStore(tmp_path / "s.db") as store:
        await store.sync(as_client(scripted), ["US.TSLA"], today=NOT_DUE)
        scripted.sent()
        report = await store.sync(
            as_client(scripted), codes, today=NOT_DUE, on_progress=events.append
        )
        # Each walk asks for full pages; the report lists codes in the order given.
        assert scripted.nums == {50}
        assert (report.skipped, report.synced) == (("US.TSLA",), ("US.AAPL", "HK.00700"))
        assert list(report.failures) == ["US.NVDA"]
        assert isinstance(report.failures["US.NVDA"], RequestTimeoutError)
        assert (report.requests, report.rows_new, report.rows_revised) == (4, 6, 0)
        # Each asked code's pages and its end, then the skipped code, once the codes asked have
        # answered (had one found a new publication, it would have been asked in the same run);
        # the counts only grow.
        assert (events[-1].event, events[-1].code) == ("skipped", "US.TSLA")
        by_code = {c: [e.event for e in events if e.code == c] for c in codes}
        assert by_code == {
            "US.TSLA": ["skipped"],
            "US.NVDA": ["failed"],
            "US.AAPL": ["page", "page", "done"],
            "HK.00700": ["page", "done"],
        }
        assert {e.codes_total for e in events} == {4}
        assert {e.quota_wait for e in events} == {0.0}
        for field in ("requests", "rows_new", "codes_done"):
            counts = [getattr(e, field) for e in events]
            assert counts == sorted(counts), field
        last = events[-1]
        assert (last.requests, last.rows_new, last.rows_revised, last.codes_done) == (4, 6, 0, 4)
        ends = [e for e in events if e.event in ("done", "failed", "skipped")]
        assert [e.codes_done for e in ends] == [1, 2, 3, 4]
        assert len(scripted.sent()) == report.requests
        # full=True reads every page though nothing is due, and finds a revision on the last.
        scripted.pages["US.AAPL"]["@3"] = ([us(27, 2000)], "-1")
        report = await store.sync(as_client(scripted), ["US.AAPL"], full=True, today=NOT_DUE)
        assert scripted.sent() == [("US.AAPL", None), ("US.AAPL", "@3")]
        assert (report.requests, report.rows_new, report.rows_revised) == (2, 0, 1)
