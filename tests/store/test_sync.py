"""`ShortInterestStore.sync` against the simulator: a full sync equals `fetch_short_interest`,
a second sends nothing for codes not due, new and revised rows, resuming an interrupted walk (and
the plan's estimate of it), failures per code, honest progress under a tight quota, two syncs at
once, a gateway whose pages make no progress, and a sync killed with SIGKILL at random points."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import random
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiomoomoo import (
    Client,
    ClientClosedError,
    Market,
    ProtocolError,
    ShortInterestStore,
    StoreBusyError,
    StoreLockedError,
    SyncProgress,
    UnknownSecurityError,
)
from aiomoomoo._security import Security
from aiomoomoo.store._write import StoreWriter
from aiomoomoo.testing import DEFAULT_AS_OF, PUBLICATION_LAGS, OpenDSimulator, Quota, UsRow

from ..with_simulator._fixtures import client_of, serving
from ..with_simulator._hostile import client_for, dates_of, hostile
from ._files import store_with_rows, write_transaction
from .test_schema import build_v1

pytestmark = pytest.mark.anyio

CODES = ["US.AAPL", "US.TSLA", "HK.00700", "HK.09988"]
# The day the simulator's histories end: nothing new can be published by then.
AS_OF = DEFAULT_AS_OF
LATER = AS_OF + dt.timedelta(days=60)


def pages_of(simulator: OpenDSimulator, code: str) -> int:
    return max(1, math.ceil(len(simulator.history(code)) / 50))


def assert_store_matches(store: ShortInterestStore, frame: pd.DataFrame, code: str) -> None:
    stored = store.history(code)[list(frame.columns)]
    pd.testing.assert_frame_equal(stored, frame, check_flags=False)


def versions(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT code, printf('%d-%02d-%02d', date / 10000, date / 100 % 100, date % 100) "
            "FROM versions JOIN codes ON codes.id = versions.code_id ORDER BY code, date"
        ).fetchall()


def segments(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT code, next_key FROM segments ORDER BY code").fetchall()


async def test_a_full_sync_equals_fetch_short_interest_row_for_row(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        sim.add_symbol("US.EMPTY", rows=[])
        codes = [*CODES, "US.EMPTY"]
        with ShortInterestStore(tmp_path / "s.db") as store:
            report = await store.sync(client, codes)
            assert report.ok
            assert report.synced == tuple(codes)
            assert report.skipped == ()
            # The fewest requests: every page once.
            assert report.requests == sim.stats.requests == sum(pages_of(sim, c) for c in codes)
            assert report.rows_new == sum(len(sim.history(c)) for c in codes)
            assert report.rows_revised == 0
            for code in codes:
                assert_store_matches(store, await client.fetch_short_interest(code), code)
            assert store.codes() == sorted(codes)
            summary = store.summary().set_index("code")
            assert summary.loc["US.AAPL", "rows"] == len(sim.history("US.AAPL"))
            assert summary.loc["US.EMPTY", "rows"] == 0
            assert summary["complete"].all()
            assert summary.loc["HK.00700", "newest"] == AS_OF.isoformat()
            # latest(): each code's newest row, as history() shows it, change columns included.
            for market in ("US", "HK"):
                latest = store.latest(market)
                assert list(latest["code"]) == sorted(c for c in codes[:4] if c[:2] == market)
                for _, row in latest.iterrows():
                    newest = store.history(row["code"]).iloc[0]
                    pd.testing.assert_series_equal(
                        row.drop("code"), newest, check_names=False, check_dtype=False
                    )
            both = store.latest()
            assert list(both["code"]) == sorted(codes[:4])
            assert both.dtypes["shares_short"] == "Int64"
            assert both.dtypes["aggregated_short"] == "Int64"


async def test_a_second_sync_with_nothing_due_sends_nothing(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, CODES, today=AS_OF)
            sent = sim.stats.requests
            events: list[SyncProgress] = []
            report = await store.sync(client, CODES, today=AS_OF, on_progress=events.append)
            assert sim.stats.requests == sent
            assert report.requests == 0
            assert report.skipped == tuple(CODES)
            assert [e.event for e in events] == ["skipped"] * len(CODES)
            # Due again later: the first page of each code only, which finds nothing new.
            report = await store.sync(client, CODES, today=LATER)
            assert sim.stats.requests == sent + len(CODES) == sent + report.requests
            assert (report.rows_new, report.rows_revised) == (0, 0)
            # full=True reads every page of every code again, due or not.
            report = await store.sync(client, CODES, full=True, today=AS_OF)
            assert report.requests == sum(pages_of(sim, c) for c in CODES)
            assert report.rows_new == 0


def later_row(row: UsRow, days: int, shares_short: int) -> UsRow:
    day = dt.date.fromisoformat(str(row.timestamp_str)) + dt.timedelta(days=days)
    assert row.timestamp is not None
    return dataclasses.replace(
        row,
        timestamp=row.timestamp + days * 86400,
        timestamp_str=day.isoformat(),
        shares_short=shares_short,
    )


async def test_new_rows_take_one_request_and_are_stored_once(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, CODES)
            old = sim.history("US.AAPL")
            newest = old[0]
            assert isinstance(newest, UsRow)
            sim.add_symbol("US.AAPL", rows=[later_row(newest, 15, 5), *old])
            sent = sim.stats.requests
            report = await store.sync(client, ["US.AAPL"], today=LATER)
            assert sim.stats.requests - sent == report.requests == 1
            assert (report.rows_new, report.rows_revised) == (1, 0)
            assert_store_matches(store, await client.fetch_short_interest("US.AAPL"), "US.AAPL")
            history = store.history("US.AAPL")
            assert history.loc[0, "shares_short_previous"] == newest.shares_short
            assert history.loc[0, "shares_short_change"] == 5 - (newest.shares_short or 0)


async def test_a_revised_value_is_updated_and_as_of_shows_the_old(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, ["US.AAPL"])
            before = dt.datetime.now(dt.UTC)
            rows = sim.history("US.AAPL")
            second = rows[1]
            assert isinstance(second, UsRow)
            assert second.shares_short is not None
            revised = dataclasses.replace(second, shares_short=second.shares_short + 1000)
            sim.add_symbol("US.AAPL", rows=[rows[0], revised, *rows[2:]])
            report = await store.sync(client, ["US.AAPL"], today=LATER)
            assert (report.requests, report.rows_new, report.rows_revised) == (1, 0, 1)
            now = store.history("US.AAPL")
            assert now.loc[1, "shares_short"] == second.shares_short + 1000
            assert len(now) == len(rows)
            then = store.history("US.AAPL", as_of=before)
            assert then.loc[1, "shares_short"] == second.shares_short
            assert len(then) == len(rows)
            # The change columns follow the revision: row 0's previous value is row 1's.
            assert now.loc[0, "shares_short_previous"] == second.shares_short + 1000
            assert then.loc[0, "shares_short_previous"] == second.shares_short
            assert store.summary().loc[0, "revisions"] == 1
            latest = store.latest("US", as_of=before.isoformat())
            assert latest.loc[0, "shares_short_previous"] == second.shares_short
            # Before the first sync the store knew nothing.
            assert len(store.history("US.AAPL", as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))) == 0


async def stop_after(
    store: ShortInterestStore, client: object, codes: list[str], pages: int
) -> None:
    """Run a sync and cancel it once ``pages`` pages are stored, as a crash would."""
    done = asyncio.Event()

    def on_progress(progress: SyncProgress) -> None:
        if progress.requests >= pages:
            done.set()

    task = asyncio.ensure_future(store.sync(client, codes, on_progress=on_progress))  # type: ignore[arg-type]
    await done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_interrupted_backfill_continues_from_its_saved_key(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        code = "HK.00700"  # 8 pages
        total = pages_of(sim, code)
        with ShortInterestStore(tmp_path / "s.db") as store:
            await stop_after(store, client, [code], 3)
            stored = len(store.history(code))
            assert 0 < stored < len(sim.history(code))
            sent = sim.stats.requests
            report = await store.sync(client, [code])
            # The first page again, then only the pages not yet stored.
            assert report.requests == sim.stats.requests - sent == 1 + total - stored // 50
            assert_store_matches(store, await client.fetch_short_interest(code), code)
        assert segments(tmp_path / "s.db") == [(code, "-1")]


async def test_an_interrupted_walk_of_new_rows_leaves_no_gap(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        code = "US.AAPL"
        old = sim.history(code)
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, [code])
            # 120 new rows published at once: three pages before the stored ones are reached.
            newest = old[0]
            assert isinstance(newest, UsRow)
            fresh = [later_row(newest, 15 * n, n) for n in range(120, 0, -1)]
            sim.add_symbol(code, rows=[*fresh, *old])
            await stop_after(store, client, [code], 1)
            report = await store.sync(client, [code])
            assert report.rows_new == 120 - 50
            assert_store_matches(store, await client.fetch_short_interest(code), code)
        assert len(versions(tmp_path / "s.db")) == len(old) + 120


@pytest.mark.parametrize("stop_at", [2, 15, 22])
async def test_after_an_interrupted_sync_the_plan_is_what_the_next_sync_sends(
    tmp_path: Path, stop_at: int
) -> None:
    codes = ["US.AAPL", "US.TSLA", "US.NVDA", "HK.00700", "HK.09988", "HK.00005"]
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            # One complete history of each market teaches the plan how long histories are.
            await store.sync(client, ["US.SPY", "HK.02800"], today=AS_OF)
            await stop_after(store, client, codes, stop_at)
            summary = store.summary().set_index("code")
            assert not summary.reindex(codes)["complete"].fillna(False).all()
            plan = store.plan(codes, today=AS_OF)
            sent = sim.stats.requests
            report = await store.sync(client, codes, today=AS_OF)
            assert report.ok
            assert report.requests == sim.stats.requests - sent == plan.requests
            assert report.skipped == plan.skipped
            assert report.synced == plan.due
            for code in codes:
                assert len(store.history(code)) == len(sim.history(code))
            # Then nothing is due, and the plan says so.
            assert store.plan(codes, today=AS_OF).requests == 0


async def test_a_failing_code_is_reported_and_the_others_are_synced(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            report = await store.sync(client, ["US.AAPL", "US.NOPE", "HK.00700"], today=AS_OF)
            assert not report.ok
            assert report.synced == ("US.AAPL", "HK.00700")
            assert isinstance(report.failures["US.NOPE"], UnknownSecurityError)
            assert "unknown stock" in str(report.failures["US.NOPE"])
            summary = store.summary().set_index("code")
            assert "unknown stock" in str(summary.loc["US.NOPE", "last_error"])
            # A failed code is due again, whatever the day: one request, for it alone (a
            # failed code with rows is pinned in test_sync_scripted.py).
            sent = sim.stats.requests
            report = await store.sync(client, ["US.AAPL", "US.NOPE"], today=AS_OF)
            assert report.skipped == ("US.AAPL",)
            assert list(report.failures) == ["US.NOPE"]
            assert sim.stats.requests - sent == report.requests == 1


async def test_bad_codes_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            with pytest.raises(ValueError, match="listed twice"):
                await store.sync(client, ["US.AAPL", "US.AAPL"])
            with pytest.raises(ValueError, match="JP"):
                await store.sync(client, ["US.AAPL", "JP.7203"])
            with pytest.raises(TypeError, match="one str"):
                await store.sync(client, "US.AAPL")
            with pytest.raises(TypeError, match="today must be"):
                await store.sync(client, ["US.AAPL"], today="2026-01-01")  # type: ignore[arg-type]
        assert sim.stats.requests == 0


async def test_two_syncs_at_once_the_second_is_refused(tmp_path: Path) -> None:
    async with serving(quota=Quota(5, 0.2)) as sim, client_of(sim, rate_limit=(5, 0.2)) as client:
        with (
            ShortInterestStore(tmp_path / "s.db") as store,
            ShortInterestStore(tmp_path / "s.db") as other,
        ):
            events: list[SyncProgress] = []
            first = asyncio.ensure_future(store.sync(client, CODES, on_progress=events.append))
            await asyncio.sleep(0.05)
            assert not first.done()
            with pytest.raises(StoreLockedError, match=r"another sync is running .* \(pid \d+\)"):
                await other.sync(client, CODES)
            with pytest.raises(StoreLockedError):
                await store.sync(client, CODES)
            # Reading while the sync writes is fine.
            assert isinstance(other.summary(), pd.DataFrame)
            report = await first
            assert report.ok
            assert report.requests == sim.stats.requests
            # 24 requests at 5 per 0.2 s: the quota held them back for at least 0.8 s in all.
            assert report.requests == 24
            assert events[-1].quota_wait >= 0.6
            # The lock goes with the sync.
            again = await other.sync(client, CODES, today=AS_OF)
            assert again.skipped == tuple(CODES)


async def test_a_second_sync_through_a_symlink_to_the_file_is_refused(tmp_path: Path) -> None:
    # Before, the symlink's name took a lock file of its own: the two syncs interleaved.
    (tmp_path / "link.db").symlink_to("s.db")
    async with serving(quota=Quota(5, 0.2)) as sim, client_of(sim, rate_limit=(5, 0.2)) as client:
        with (
            ShortInterestStore(tmp_path / "s.db") as store,
            ShortInterestStore(tmp_path / "link.db") as other,
        ):
            first = asyncio.ensure_future(store.sync(client, CODES))
            await asyncio.sleep(0.05)
            assert not first.done()
            with pytest.raises(StoreLockedError, match="another sync is running"):
                await other.sync(client, CODES)
            assert (await first).ok


async def test_a_sync_waits_for_another_programs_write_at_most_wait(tmp_path: Path) -> None:
    path = store_with_rows(tmp_path / "s.db")
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(path, wait=0.2) as store:
            with (
                write_transaction(path),
                pytest.raises(StoreBusyError, match="another program holds a write transaction"),
            ):
                await store.sync(client, CODES, full=True)
            assert store.summary()["last_synced"].isna().all()
            # The sync let its lock go: once the other program is done, the next one runs.
            assert (await store.sync(client, CODES, full=True)).ok


async def test_progress_counts_requests_sent_and_the_time_the_quota_held_them(
    tmp_path: Path,
) -> None:
    codes = ["US.AAPL", "US.TSLA", "US.NVDA"]  # 12 requests at 5 per 0.5 s: three windows
    async with (
        serving(quota=Quota(5, 0.5)) as sim,
        client_of(sim, rate_limit=(5, 0.5)) as client,
    ):
        seen: list[tuple[SyncProgress, int]] = []

        def on_progress(progress: SyncProgress) -> None:
            seen.append((progress, sim.stats.requests))

        with ShortInterestStore(tmp_path / "s.db") as store:
            report = await store.sync(client, codes, on_progress=on_progress)
    assert report.ok
    assert report.requests == sim.stats.requests == 12
    assert sim.stats.rate_limited == 0
    # A request still queued for the quota is never shown as sent.
    for progress, arrived in seen:
        assert progress.requests <= arrived, (progress, arrived)
    assert [p.requests for p, _ in seen if p.event == "page"][:5] == [1, 2, 3, 4, 5]
    # The walks wait for the second and third windows: quota_wait grows while they are held.
    waits = [p.quota_wait for p, _ in seen]
    assert waits == sorted(waits)
    first_window = [p.quota_wait for p, _ in seen if p.requests <= 5]
    assert first_window[-1] < 0.5 <= waits[-1]
    assert waits[-1] >= 0.8  # held from the first request to the last grant, about 1 s


async def test_a_gateway_whose_pages_make_no_progress_fails_that_code_quickly(
    tmp_path: Path,
) -> None:
    # Every page holds the same rows under a fresh key: without the progress guard the walk
    # would go on for ever (a key is never repeated).
    async with (
        hostile(repeat=True) as gateway,
        Client(gateway.host, gateway.port, rate_limit=None, timeout=5) as client,
    ):
        with ShortInterestStore(tmp_path / "s.db") as store:
            for full in (True, False):
                start = len(gateway.requests)
                async with asyncio.timeout(10):
                    report = await store.sync(client, ["US.AAPL", "HK.00700"], full=full)
                assert report.synced == ()
                for code in ("US.AAPL", "HK.00700"):
                    error = report.failures[code]
                    assert isinstance(error, ProtocolError)
                    assert code in str(error)
                    assert "no progress" in str(error)
                    assert "2026-04-30" in str(error)
                # The second page, no older than the first, ends each walk.
                assert len(gateway.requests) - start == report.requests == 4
            assert "no progress" in str(store.summary().loc[0, "last_error"])


# -- kill -9 ------------------------------------------------------------------------------

SYNC_SCRIPT = """
import asyncio, sys
import aiomoomoo

async def main(port, path, codes):
    async with aiomoomoo.Client("127.0.0.1", port, rate_limit=(4, 0.1)) as client:
        with aiomoomoo.ShortInterestStore(path) as store:
            print("syncing", flush=True)
            report = await store.sync(client, codes)
            print("done", report.requests, report.ok, flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))
"""


async def run_sync(port: int, path: Path, codes: list[str], kill_after: float | None) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SYNC_SCRIPT,
        str(port),
        str(path),
        *codes,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"syncing\n"
    if kill_after is not None:
        await asyncio.sleep(kill_after)
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return out.decode()


async def test_a_sync_killed_at_random_points_ends_with_every_row_once(tmp_path: Path) -> None:
    rng = random.Random(12)
    codes = ["US.AAPL", "US.TSLA", "US.NVDA", "HK.00700", "HK.09988", "HK.00005"]
    path = tmp_path / "s.db"
    async with serving(quota=Quota(4, 0.1)) as sim:
        killed = 0
        for _ in range(4):
            out = await run_sync(sim.port, path, codes, kill_after=rng.uniform(0.05, 0.3))
            killed += "done" not in out
        assert killed >= 2, "the kills came too late to interrupt anything"
        out = await run_sync(sim.port, path, codes, kill_after=None)
        assert "done" in out
        assert "True" in out
        async with client_of(sim) as client:
            with ShortInterestStore(path) as store:
                for code in codes:
                    assert_store_matches(store, await client.fetch_short_interest(code), code)
        stored = versions(path)
        assert len(stored) == len(set(stored)) == sum(len(sim.history(c)) for c in codes)
        assert segments(path) == [(code, "-1") for code in sorted(codes)]


# -- the simulator's clock ------------------------------------------------------------------


async def test_after_a_publication_one_request_per_code_stores_exactly_the_new_rows(
    tmp_path: Path,
) -> None:
    async with (
        serving(publication_lag=PUBLICATION_LAGS) as sim,
        client_of(sim) as client,
    ):
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, CODES, today=sim.as_of)
            before = {code: store.history(code) for code in CODES}
            # To Saturday 2026-05-16: US 2026-04-30 (out on 05-11), HK 04-24, 04-30 and 05-08.
            published = sim.advance(16)
            assert all(published[code] > 0 for code in CODES)
            sent = sim.stats.requests
            report = await store.sync(client, CODES, today=sim.as_of)
            assert report.requests == sim.stats.requests - sent == len(CODES)
            assert report.rows_new == sum(published[code] for code in CODES)
            assert report.rows_revised == 0
            for code in CODES:
                frame = await client.fetch_short_interest(code)
                assert_store_matches(store, frame, code)
                # The older rows are untouched but for when they were last seen.
                old = store.history(code).iloc[published[code] :].reset_index(drop=True)
                pd.testing.assert_frame_equal(
                    old.drop(columns="last_seen"), before[code].drop(columns="last_seen")
                )
                assert (old["last_seen"] >= before[code]["last_seen"]).all()
            # Three days on nothing is published, and nothing can be: the next US publication
            # (of 05-15) cannot be out before 05-25, the next HK one (of 05-15) before 05-21.
            assert set(sim.advance(3).values()) == {0}
            report = await store.sync(client, CODES, today=sim.as_of)
            assert report.skipped == tuple(CODES)
            assert report.requests == 0
            assert report.markets[Market.HK].next_publication == dt.date(2026, 5, 21)


async def test_a_revision_is_stored_and_as_of_returns_the_old_value(tmp_path: Path) -> None:
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            await store.sync(client, CODES, today=sim.as_of)
            known = dt.datetime.now(dt.UTC)
            old = {code: store.history(code).loc[0] for code in CODES}
            published = sim.advance(16, revise=True)
            # This simulator publishes without a lag; planned for a day when the publications
            # of the 16 days are surely out.
            report = await store.sync(client, CODES, today=LATER)
            assert report.rows_revised == len(CODES)
            assert report.rows_new == sum(published[code] for code in CODES)
            for code in CODES:
                column = "shares_short" if code.startswith("US") else "aggregated_short"
                now = store.history(code)
                assert_store_matches(store, await client.fetch_short_interest(code), code)
                row = now.loc[published[code]]
                assert row["timestamp_str"] == old[code]["timestamp_str"]
                assert row[column] != old[code][column]
                then = store.history(code, as_of=known)
                assert then.loc[0, column] == old[code][column]
                assert len(then) == len(now) - published[code]
            # A revision deeper than the first page is caught by a full sync.
            deep = dt.date.fromisoformat(str(sim.history("US.AAPL")[120].timestamp_str))
            sim.revise("US.AAPL", deep, shares_short=123)
            assert (await store.sync(client, ["US.AAPL"], today=LATER)).rows_revised == 0
            report = await store.sync(client, ["US.AAPL"], full=True)
            assert report.rows_revised == 1
            assert store.history("US.AAPL").loc[120, "shares_short"] == 123


async def test_closing_the_client_ends_the_sync_instead_of_failing_every_code(
    tmp_path: Path,
) -> None:
    async with serving(quota=Quota(5, 0.2)) as sim, client_of(sim, rate_limit=(5, 0.2)) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            task = asyncio.ensure_future(store.sync(client, CODES))
            await asyncio.sleep(0.1)
            await client.close()
            with pytest.raises(ClientClosedError):
                await task
            assert store.summary()["last_error"].isna().all()
            # The lock went with it.
            async with client_of(sim, rate_limit=(5, 0.2)) as other:
                report = await store.sync(other, CODES)
            assert report.ok
            for code in CODES:
                assert len(store.history(code)) == len(sim.history(code))


# -- a bad row never poisons the store ----------------------------------------------------------

HEALTHY = [f"US.H{n:02d}" for n in range(20)]


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"timestampStr": "2026-04-30 00:00:00"}, "'2026-04-30 00:00:00'"),
        ({"timestampStr": "2026/04/30"}, "'2026/04/30'"),
        ({"timestampStr": "9999-12-31"}, "'9999-12-31'"),
        ({"timestampStr": None, "timestamp": 2**62}, "timestamp 4611686018427387904"),
    ],
    ids=["date-and-time", "slashes", "year-9999", "no-date-absurd-timestamp"],
)
async def test_a_bad_row_fails_its_code_only_and_is_never_stored(
    tmp_path: Path, fields: dict[str, object], shown: str
) -> None:
    # Stored as it came, such a row made every later sync of every code raise ValueError or
    # OverflowError before sending anything (3 of 3).
    newest = dates_of("US.BAD", 30)[0]
    async with (
        hostile(bad_rows={("US.BAD", newest): fields}) as gateway,
        client_for(gateway, timeout=5) as client,
    ):
        with ShortInterestStore(tmp_path / "s.db") as store:
            report = await store.sync(client, ["US.BAD", *HEALTHY])
            assert report.synced == tuple(HEALTHY)
            error = report.failures["US.BAD"]
            assert isinstance(error, ProtocolError)
            assert "US.BAD" in str(error)
            assert "row 0 of the page asked for with next_key None" in str(error)
            assert shown in str(error)
            assert "US.BAD" not in {code for code, _ in versions(tmp_path / "s.db")}
            # Later syncs go on, whether the gateway mends its row or not.
            for _ in range(3):
                report = await store.sync(client, ["US.BAD", *HEALTHY], today=LATER)
                assert set(report.failures) == {"US.BAD"}
            gateway.bad_rows.clear()
            report = await store.sync(client, ["US.BAD", *HEALTHY], today=LATER)
            assert report.ok
            assert store.history("US.BAD")["timestamp_str"].iloc[0] == newest


@pytest.mark.parametrize("stored", ["2026-04-30 00:00:00", "2026/04/30", "9999-12-31"])
async def test_a_store_already_holding_a_bad_row_still_syncs(tmp_path: Path, stored: str) -> None:
    # As an older aiomoomoo stored it: the row's date as OpenD sent it. Every later sync of
    # every code raised ValueError or OverflowError before sending anything.
    path = tmp_path / "s.db"
    build_v1(path, bad_date=stored)
    async with serving() as sim, client_of(sim) as client:
        with ShortInterestStore(path) as store:
            for _ in range(3):
                report = await store.sync(client, ["US.AAPL", "US.TSLA"], every=True)
                assert report.ok
                assert report.synced == ("US.AAPL", "US.TSLA")


async def test_anything_that_goes_wrong_with_one_codes_pages_is_that_codes_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bare OSError while storing one code's page aborted the sync with no report and
    # cancelled the healthy walks.
    store_page = StoreWriter.store_page

    def failing(self: StoreWriter, security: Security, *args: Any) -> Any:
        if security.code == "US.BAD":
            raise OSError(75, "Value too large for defined data type")
        return store_page(self, security, *args)

    monkeypatch.setattr(StoreWriter, "store_page", failing)
    async with hostile() as gateway, client_for(gateway, timeout=5) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            report = await store.sync(client, [*HEALTHY[:10], "US.BAD", *HEALTHY[10:]])
            assert report.synced == tuple(HEALTHY)
            assert list(report.failures) == ["US.BAD"]
            assert isinstance(report.failures["US.BAD"], OSError)
            summary = store.summary().set_index("code")
            assert summary.loc["US.BAD", "last_error"] == (
                "OSError: [Errno 75] Value too large for defined data type"
            )
            assert summary.loc[HEALTHY, "complete"].all()
    logged = [r for r in caplog.records if "sync of US.BAD failed" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


async def test_an_unchanged_nan_read_again_is_no_revision(tmp_path: Path) -> None:
    # Stored as NULL, a NaN compared unequal on every re-read: rows_revised was 1 on 5 of 5.
    row = UsRow(1_777_521_600, "2026-04-30", 1000, float("nan"), 200, float("inf"), -0.0, None)
    async with serving() as sim, client_of(sim) as client:
        sim.add_symbol("US.NAN", rows=[row])
        with ShortInterestStore(tmp_path / "s.db") as store:
            first = await store.sync(client, ["US.NAN"])
            moment = dt.datetime.now(dt.UTC)
            again = [await store.sync(client, ["US.NAN"], full=True) for _ in range(5)]
            assert first.rows_new == 1
            assert [r.rows_revised for r in again] == [0] * 5
            assert store.summary().loc[0, "revisions"] == 0
            then = store.history("US.NAN", as_of=moment)
            assert len(then) == 1
            assert then["short_percent"].isna().tolist() == [True]
            assert then.loc[0, "days_to_cover"] == math.inf
