"""Many symbols at once against the simulator: results as walks finish, the concurrency bound,
per-symbol failures, ``since``, progress, the combined frame, early exit, quota and drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import (
    HK_COLUMNS,
    US_COLUMNS,
    FetchManyError,
    MoomooError,
    Progress,
    ShortInterestPage,
    SymbolResult,
    UnknownSecurityError,
)
from aiomoomoo.testing import Faults, OpenDSimulator, Quota, UsRow

from ._fixtures import assert_strict_quota_kept, client_of, serving

pytestmark = pytest.mark.anyio

MIXED_COLUMNS = ["code", *US_COLUMNS, "aggregated_short", "aggregated_short_ratio"]
MIXED_DTYPES = {
    "code": "string",
    "timestamp": "Int64",
    "timestamp_str": "string",
    "shares_short": "Int64",
    "short_percent": "float64",
    "avg_daily_share_volume": "Int64",
    "days_to_cover": "float64",
    "close_price": "float64",
    "last_close_price": "float64",
    "aggregated_short": "Int64",
    "aggregated_short_ratio": "float64",
}
US_ONLY = ("shares_short", "short_percent", "avg_daily_share_volume", "days_to_cover")
HK_ONLY = ("aggregated_short", "aggregated_short_ratio")

PERIOD = 0.5
MAX_REQUESTS = 10


def columns_of(code: str) -> tuple[str, ...]:
    return US_COLUMNS if code.startswith("US.") else HK_COLUMNS


def expected(sim: OpenDSimulator, code: str, since: str | None = None) -> list[tuple[object, ...]]:
    """The rows a complete walk of ``code`` back to ``since`` must give, in frame column order."""
    columns = columns_of(code)
    return [
        tuple(getattr(row, column) for column in columns)
        for row in sim.history(code)
        if since is None or str(row.timestamp_str) >= since
    ]


def values(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[object, ...]]:
    """The cells of ``columns``, row by row, with None for a missing value."""
    return [
        tuple(None if pd.isna(cell) else cell for cell in row)
        for row in frame[list(columns)].itertuples(index=False, name=None)
    ]


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {str(column): str(dtype) for column, dtype in frame.dtypes.items()}


def full_pages(sim: OpenDSimulator, code: str, num: int = 50) -> int:
    return max(1, math.ceil(len(sim.history(code)) / num))


def walk_tasks() -> list[asyncio.Task[Any]]:
    """The per-symbol walk tasks of any many-symbols iterator still alive in this loop."""
    # An abandoned generator's aclose() runs as a task whose coroutine has no __qualname__.
    return [
        t for t in asyncio.all_tasks() if "run_each" in getattr(t.get_coro(), "__qualname__", "")
    ]


# -- results --------------------------------------------------------------------------------


async def test_each_symbol_is_yielded_with_its_whole_history_as_it_completes() -> None:
    codes = ["HK.00700", "US.AAPL", "US.BRK.B", "HK.09988", "US.ONE"]
    async with serving() as sim, client_of(sim) as client:
        sim.add_symbol("US.ONE", rows=sim.history("US.MSFT")[:3])
        results: list[SymbolResult] = []
        requests_seen: list[int] = []
        async for result in client.iter_short_interest_many(codes, concurrency=len(codes)):
            results.append(result)
            requests_seen.append(sim.stats.requests)
    # The one-page walk is handed over while the eight-page ones are still running.
    assert results[0].code == "US.ONE"
    assert requests_seen[0] < sim.stats.requests
    assert {r.code for r in results} == set(codes)
    assert [r.code for r in results][-2:] in (["HK.00700", "HK.09988"], ["HK.09988", "HK.00700"])
    for result in results:
        assert result.ok
        assert result.error is None
        assert result.pages == full_pages(sim, result.code)
        assert list(result.frame.columns) == list(columns_of(result.code))
        assert values(result.frame, columns_of(result.code)) == expected(sim, result.code)
    assert sim.stats.requests == sum(r.pages for r in results)


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_at_most_concurrency_walks_run_at_once(
    concurrency: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = ["US.AAPL", "US.TSLA", "US.NVDA", "US.SPY", "US.MSFT"]
    async with serving(faults=Faults(reply_delay=0.01)) as sim, client_of(sim) as client:
        walk = client.iter_short_interest
        running = peak = 0

        async def counted(code: str, **options: Any) -> AsyncGenerator[ShortInterestPage, None]:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                async for page in walk(code, **options):
                    yield page
            finally:
                running -= 1

        monkeypatch.setattr(client, "iter_short_interest", counted)
        results = [r async for r in client.iter_short_interest_many(codes, concurrency=concurrency)]
    assert peak == concurrency
    assert running == 0
    assert all(r.ok and len(r.frame) == len(sim.history(r.code)) for r in results)
    if concurrency == 1:
        # One walk at a time, started in the order given.
        assert [r.code for r in results] == codes


async def test_a_failed_symbol_is_reported_and_the_others_are_complete() -> None:
    codes = ["US.AAPL", "US.NOPE", "HK.00700"]
    async with serving() as sim, client_of(sim) as client:
        results = {r.code: r async for r in client.iter_short_interest_many(codes)}
    failed = results.pop("US.NOPE")
    assert not failed.ok
    assert isinstance(failed.error, UnknownSecurityError)
    assert "unknown stock" in str(failed.error)
    assert failed.pages == 0
    assert len(failed.frame) == 0
    assert list(failed.frame.columns) == list(US_COLUMNS)
    assert dtypes(failed.frame) == {c: MIXED_DTYPES[c] for c in US_COLUMNS}
    for code, result in results.items():
        assert result.ok
        assert values(result.frame, columns_of(code)) == expected(sim, code)


async def test_since_stops_each_walk_early_and_trims_older_rows() -> None:
    codes = ["US.AAPL", "HK.00700"]
    since = dt.date(2025, 6, 1)
    async with serving() as sim, client_of(sim) as client:
        results = {
            r.code: r async for r in client.iter_short_interest_many(codes, since=since, num=10)
        }
    for code, result in results.items():
        rows = expected(sim, code, since.isoformat())
        assert 0 < len(rows) < len(sim.history(code))
        assert values(result.frame, columns_of(code)) == rows
        # The walk ends with the page holding the first row older than since.
        assert result.pages == len(rows) // 10 + 1 < full_pages(sim, code, 10)
    assert sim.stats.requests == sum(r.pages for r in results.values())


async def test_progress_reports_every_page_and_symbol_with_growing_totals() -> None:
    codes = ["US.AAPL", "HK.NOPE", "HK.02800", "US.SPY"]
    events: list[Progress] = []
    async with serving() as sim, client_of(sim) as client:
        results = [
            r
            async for r in client.iter_short_interest_many(
                codes, num=40, concurrency=2, on_progress=events.append
            )
        ]
    pages = sum(r.pages for r in results)
    assert [e.event for e in events].count("page") == pages == sim.stats.requests - 1  # HK.NOPE
    assert sorted((e.code, e.event) for e in events if e.event != "page") == sorted(
        (r.code, "done" if r.ok else "failed") for r in results
    )
    for code in codes:
        result = next(r for r in results if r.code == code)
        assert sum(1 for e in events if e.event == "page" and e.code == code) == result.pages
    assert all(e.symbols_total == len(codes) for e in events)
    previous = Progress("page", "", 0, 0, 0, len(codes))
    for event in events:
        assert event.pages == previous.pages + (event.event == "page")
        assert event.symbols_done == previous.symbols_done + (event.event != "page")
        assert event.rows >= previous.rows
        previous = event
    assert events[-1].symbols_done == len(codes)
    assert events[-1].rows == sum(len(r.frame) for r in results)


async def test_progress_rows_count_only_the_rows_since_keeps() -> None:
    codes = ["US.AAPL", "HK.00700"]
    events: list[Progress] = []
    async with serving() as sim, client_of(sim) as client:
        frame = await client.fetch_short_interest_many(
            codes, since="2025-06-01", num=7, on_progress=events.append
        )
    served = 0
    for code in codes:
        pages = sum(1 for e in events if e.code == code and e.event == "page")
        served += min(pages * 7, len(sim.history(code)))
    # Each walk's last page reaches past since= and holds rows the frame drops.
    assert served > len(frame) > 0
    assert events[-1].rows == len(frame)
    assert all(e.rows <= len(frame) for e in events)


# -- one frame ------------------------------------------------------------------------------


async def test_fetch_many_gives_one_frame_grouped_in_the_given_order() -> None:
    codes = ["HK.00700", "US.AAPL", "HK.09988"]
    async with serving() as sim, client_of(sim) as client:
        frame = await client.fetch_short_interest_many(codes, since="2024-01-01")
        us_only = await client.fetch_short_interest_many(["US.TSLA", "US.AAPL"], num=30)
    assert list(frame.columns) == MIXED_COLUMNS
    assert dtypes(frame) == MIXED_DTYPES
    assert frame.attrs["next_key"] == "-1"
    assert frame.index.equals(pd.RangeIndex(len(frame)))
    groups = frame["code"].to_list()
    assert sorted(set(groups), key=groups.index) == codes
    for code in codes:
        rows = frame[frame["code"] == code]
        assert values(rows, columns_of(code)) == expected(sim, code, "2024-01-01")
        other = US_ONLY if code.startswith("HK.") else HK_ONLY
        assert rows[list(other)].isna().all().all()
    assert list(us_only.columns) == ["code", *US_COLUMNS]
    assert dtypes(us_only) == {c: MIXED_DTYPES[c] for c in us_only.columns}
    assert us_only["code"].to_list() == ["US.TSLA"] * 176 + ["US.AAPL"] * 176
    assert values(us_only, US_COLUMNS) == expected(sim, "US.TSLA") + expected(sim, "US.AAPL")


async def test_fetch_many_raises_with_the_frame_of_what_arrived() -> None:
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(FetchManyError) as caught:
            await client.fetch_short_interest_many(["US.AAPL", "HK.NOPE", "US.GONE"])
    error = caught.value
    assert isinstance(error, MoomooError)
    assert set(error.failures) == {"HK.NOPE", "US.GONE"}
    assert all(isinstance(e, UnknownSecurityError) for e in error.failures.values())
    assert "2 of the symbols failed" in str(error)
    assert "HK.NOPE" in str(error)
    assert "unknown stock" in str(error)
    frame = error.frame
    assert frame["code"].unique().tolist() == ["US.AAPL"]
    assert values(frame, US_COLUMNS) == expected(sim, "US.AAPL")
    # HK columns of a market whose only code failed keep their dtypes (regression: float64).
    assert list(frame.columns) == MIXED_COLUMNS
    assert dtypes(frame) == MIXED_DTYPES
    assert frame[list(HK_ONLY)].isna().all().all()
    assert frame.attrs["next_key"] == "-1"


@pytest.mark.parametrize(
    ("codes", "columns"),
    [
        (["US.NOPE", "HK.NOPE"], MIXED_COLUMNS),
        (["US.EMPTY"], ["code", *US_COLUMNS]),
        ([], MIXED_COLUMNS),
    ],
    ids=["all-failed", "empty-history", "no-codes"],
)
async def test_a_frame_without_rows_keeps_its_columns_and_dtypes(
    codes: list[str], columns: list[str]
) -> None:
    async with serving() as sim, client_of(sim) as client:
        sim.add_symbol("US.EMPTY", rows=[])
        failures: dict[str, MoomooError] = {}
        try:
            frame = await client.fetch_short_interest_many(codes)
        except FetchManyError as exc:
            frame, failures = exc.frame, exc.failures
    assert set(failures) == {code for code in codes if code.endswith(".NOPE")}
    assert len(frame) == 0
    assert list(frame.columns) == columns
    assert dtypes(frame) == {c: MIXED_DTYPES[c] for c in columns}
    assert frame.attrs["next_key"] == "-1"


async def test_mixed_rows_with_missing_fields_keep_int64() -> None:
    gappy = [
        UsRow(1_767_243_600, "2026-01-01", None, 1.5, 200, None, 10.0, 9.5),
        UsRow(1_735_707_600, "2025-01-01", 300, None, None, 2.0, None, 9.0),
    ]
    async with serving() as sim, client_of(sim) as client:
        sim.add_symbol("US.GAPS", rows=gappy)
        frame = await client.fetch_short_interest_many(["US.GAPS", "HK.00005"])
    assert dtypes(frame) == MIXED_DTYPES
    assert values(frame[frame["code"] == "US.GAPS"], US_COLUMNS) == [
        (1_767_243_600, "2026-01-01", None, 1.5, 200, None, 10.0, 9.5),
        (1_735_707_600, "2025-01-01", 300, None, None, 2.0, None, 9.0),
    ]


# -- arguments ------------------------------------------------------------------------------

BAD_MANY_ARGUMENTS: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    (["US.AAPL", "US.AAPL"], {}, ValueError, "code 'US.AAPL' is listed twice"),
    ("US.AAPL", {}, TypeError, "not one str 'US.AAPL'; wrap it in a list"),
    (["US.AAPL", "XX.1"], {}, ValueError, "unknown market 'XX'"),
    (["SH.600000"], {}, ValueError, "covers only HK and US securities, not SH"),
    (["US.AAPL", 700], {}, TypeError, "code must be a str"),
    (["US.AAPL"], {"num": 0}, ValueError, "num must be from 1 to 50, got 0"),
    (["US.AAPL"], {"num": 51}, ValueError, "num must be from 1 to 50, got 51"),
    (["US.AAPL"], {"num": "10"}, TypeError, "num must be an int"),
    (["US.AAPL"], {"num": True}, TypeError, "got True"),
    (["US.AAPL"], {"concurrency": 0}, ValueError, "concurrency must be an int >= 1, got 0"),
    (["US.AAPL"], {"concurrency": True}, ValueError, "got True"),
    (["US.AAPL"], {"concurrency": 2.5}, ValueError, "got 2.5"),
    (["US.AAPL"], {"since": "2025-13-01"}, ValueError, "since '2025-13-01' is not a date"),
    (["US.AAPL"], {"since": 20250101}, TypeError, "since must be a datetime.date"),
]


@pytest.mark.parametrize(("codes", "options", "error", "message"), BAD_MANY_ARGUMENTS)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    codes: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    async with serving() as sim, client_of(sim) as client:
        with pytest.raises(error, match=message):
            await client.fetch_short_interest_many(codes, **options)
        with pytest.raises(error, match=message):
            async for _ in client.iter_short_interest_many(codes, **options):
                pass
        await asyncio.sleep(0.02)
        assert sim.stats.requests == 0
        assert walk_tasks() == []


# -- leaving early --------------------------------------------------------------------------


@pytest.mark.parametrize("closing", [True, False], ids=["aclosing", "bare-break"])
async def test_leaving_early_cancels_the_other_walks(
    closing: bool, caplog: pytest.LogCaptureFixture
) -> None:
    codes = ["US.ONE", "HK.00700", "HK.09988", "HK.00005", "HK.02800"]
    async with (
        serving(faults=Faults(reply_delay=0.01)) as sim,
        client_of(sim, rate_limit=(50, 30.0)) as client,
    ):
        sim.add_symbol("US.ONE", rows=sim.history("US.AAPL")[:1])
        first: SymbolResult | None = None
        if closing:
            async with contextlib.aclosing(
                client.iter_short_interest_many(codes, num=10, concurrency=3)
            ) as results:
                async for first in results:  # noqa: B007
                    break
        else:
            async for first in client.iter_short_interest_many(codes, num=10, concurrency=3):  # noqa: B007
                break
            # The abandoned generator is closed by the event loop's finalizer, soon after (on a
            # loaded machine, or under uvloop, a few iterations later: wait up to a deadline).
            assert walk_tasks()
            for _ in range(200):
                if not walk_tasks():
                    break
                await asyncio.sleep(0.01)
        assert first is not None
        assert first.code == "US.ONE"
        assert walk_tasks() == []
        await asyncio.sleep(0.03)  # let requests already on the wire arrive
        sent = sim.stats.requests
        await asyncio.sleep(0.05)
        assert sim.stats.requests == sent < 10
        assert "in_flight=0" in repr(client.rate_limiter)
        assert "waiting=0" in repr(client.rate_limiter)
        # The client is unharmed: the next call pages normally.
        frame = await client.fetch_short_interest("HK.00700")
    assert values(frame, HK_COLUMNS) == expected(sim, "HK.00700")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- quota and drops ------------------------------------------------------------------------


async def test_many_symbols_under_a_strict_quota_take_the_optimum_time() -> None:
    codes = ["US.AAPL", "US.TSLA", "US.NVDA", "HK.00700", "US.SPY", "US.MSFT"]
    async with (
        serving(quota=Quota(MAX_REQUESTS, PERIOD)) as sim,
        client_of(sim, rate_limit=(MAX_REQUESTS, PERIOD), rate_limit_wait=0) as client,
    ):
        requests = sum(full_pages(sim, code) for code in codes)
        start = time.monotonic()
        frame = await client.fetch_short_interest_many(codes, concurrency=4)
        elapsed = time.monotonic() - start
    assert len(frame) == sum(len(sim.history(code)) for code in codes)
    assert_strict_quota_kept(sim, requests, elapsed, MAX_REQUESTS, PERIOD)


async def test_many_symbols_survive_dropped_connections() -> None:
    codes = ["US.AAPL", "HK.00700", "US.BRK.B", "HK.02800", "US.NVDA"]
    async with (
        serving(faults=Faults(drop_after=3)) as sim,
        client_of(sim, retries=10) as client,
    ):
        frame = await client.fetch_short_interest_many(codes, num=40, concurrency=4)
    for code in codes:
        assert values(frame[frame["code"] == code], columns_of(code)) == expected(sim, code)
    assert sim.stats.dropped > 0
    assert client.reconnects == sim.stats.connections - 1 > 0


async def test_a_client_shared_by_two_many_calls_at_once() -> None:
    async with serving() as sim, client_of(sim) as client:
        one, two = await asyncio.gather(
            client.fetch_short_interest_many(["US.AAPL", "HK.00700"]),
            client.fetch_short_interest_many(["HK.00700", "US.AAPL"], num=20),
        )
    assert sim.stats.connections == 1
    for code in ("US.AAPL", "HK.00700"):
        assert values(one[one["code"] == code], columns_of(code)) == expected(sim, code)
        assert values(two[two["code"] == code], columns_of(code)) == expected(sim, code)
