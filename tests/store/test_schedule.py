"""A sync on the real publication schedule, against the simulator with publication lags: a
calendar of weekday refreshes costs what was published plus a few probes and leaves the store
equal to what is published after every run; probes find a publication and the market follows in
the same run; a code behind the frontier is asked for a few days, then not."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from aiomoomoo import Market, ShortInterestStore
from aiomoomoo.store import MarketSync
from aiomoomoo.store._plan import PROBES
from aiomoomoo.testing import PUBLICATION_LAGS, OpenDSimulator, SymbolProfile

from ..with_simulator._fixtures import client_of, serving

pytestmark = pytest.mark.anyio

US_ONLY = ["US.AAPL", "US.TSLA", "US.NVDA", "US.SPY", "US.MSFT"]


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    return [day for day in days if day.weekday() < 5]


def assert_store_is_published(store: ShortInterestStore, sim: OpenDSimulator, code: str) -> None:
    """The store holds exactly ``code``'s published rows: every date and short position."""
    stored = store.history(code)
    column = "shares_short" if code.startswith("US.") else "aggregated_short"
    rows = sim.history(code)
    assert list(stored["timestamp_str"]) == [row.timestamp_str for row in rows], code
    assert list(stored[column]) == [getattr(row, column) for row in rows], code


async def test_weekday_refreshes_cost_what_was_published_plus_a_few_probes(
    tmp_path: Path,
) -> None:
    days = weekdays(dt.date(2026, 3, 2), dt.date(2026, 4, 17))
    async with serving(
        publication_lag=PUBLICATION_LAGS, as_of=days[0] - dt.timedelta(days=1)
    ) as sim:
        codes = [f"US.T{i:02d}" for i in range(14)] + [f"HK.{20000 + i}" for i in range(6)]
        for index, code in enumerate(codes):
            profile = SymbolProfile(20.0 + index, 1e9, 1.0 + index % 5, 4e6)
            sim.add_symbol(code, profile)
        async with client_of(sim) as client:
            with ShortInterestStore(tmp_path / "s.db") as store:
                gained = {code: len(sim.history(code)) for code in codes}
                total = minimum_total = 0
                for day in days:
                    fresh = sim.advance((day - sim.as_of).days)
                    for code in codes:
                        gained[code] += fresh[code]
                    # One request per code with new rows, a page per 50 rows.
                    minimum = sum(math.ceil(n / 50) for n in gained.values())
                    gained = dict.fromkeys(codes, 0)
                    report = await store.sync(client, codes, today=day)
                    assert report.ok
                    assert report.requests <= minimum + PROBES * len(Market), day
                    for code in codes:
                        assert_store_is_published(store, sim, code)
                    if day != days[0]:
                        total += report.requests
                        minimum_total += minimum
                # Seven weeks: three US publications, seven HK ones, each found on its day.
                assert minimum_total == 3 * 14 + 7 * 6
                assert total <= minimum_total + (3 + 7) * PROBES


async def test_a_probe_that_finds_a_publication_brings_its_market_in_the_same_run(
    tmp_path: Path,
) -> None:
    async with serving(publication_lag=PUBLICATION_LAGS) as sim:
        # A code whose publication stopped at 2026-03-31: behind the frontier from then on.
        sim.add_symbol("US.STALE", rows=sim.history("US.AAPL")[1:])
        codes = [*US_ONLY, "US.STALE"]
        async with client_of(sim) as client:
            with ShortInterestStore(tmp_path / "s.db") as store:

                async def sync_on(day: dt.date) -> tuple[int, MarketSync, tuple[str, ...]]:
                    sim.advance((day - sim.as_of).days)
                    report = await store.sync(client, codes, today=day)
                    assert report.ok
                    for code in codes:
                        assert_store_is_published(store, sim, code)
                    synced = report.synced
                    return report.requests, report.markets[Market.US], synced

                # Thursday 04-30: US rows are out to 04-15; the frontier moves there today.
                requests, us, _ = await sync_on(dt.date(2026, 4, 30))
                assert us.newest == dt.date(2026, 4, 15)
                assert (us.probes, us.found) == ((), None)
                assert us.next_publication == dt.date(2026, 5, 8)
                # US.STALE lacks 04-15: asked on each run for three business days, then not.
                for day in (dt.date(2026, 5, 1), dt.date(2026, 5, 4), dt.date(2026, 5, 5)):
                    assert await sync_on(day) == (1, us, ("US.STALE",))
                for day in (dt.date(2026, 5, 6), dt.date(2026, 5, 7)):
                    assert await sync_on(day) == (0, us, ())
                # Friday 05-08 the publication of 04-30 can be out, and is not (it is on 05-11):
                # three probes, nothing found, nothing else asked.
                requests, us, synced = await sync_on(dt.date(2026, 5, 8))
                assert (requests, us.found, synced) == (3, False, us.probes)
                assert us.probes == ("US.AAPL", "US.TSLA", "US.NVDA")
                assert us.newest == dt.date(2026, 4, 15)
                # Monday 05-11 it is out: the probes find it and every US code is asked.
                requests, us, synced = await sync_on(dt.date(2026, 5, 11))
                assert (requests, us.found, synced) == (len(codes), True, tuple(codes))
                assert us.newest == dt.date(2026, 4, 30)
                assert us.next_publication == dt.date(2026, 5, 25)
                # And the code that lacks it is asked for three business days again.
                assert (await sync_on(dt.date(2026, 5, 14)))[0] == 1
                assert (await sync_on(dt.date(2026, 5, 15)))[0] == 0


async def test_every_asks_every_code_whatever_the_schedule(tmp_path: Path) -> None:
    async with serving(publication_lag=PUBLICATION_LAGS) as sim, client_of(sim) as client:
        with ShortInterestStore(tmp_path / "s.db") as store:
            day = sim.as_of
            await store.sync(client, US_ONLY, today=day)
            assert (await store.sync(client, US_ONLY, today=day)).requests == 0
            report = await store.sync(client, US_ONLY, today=day, every=True)
            assert report.requests == len(US_ONLY)
            assert report.markets[Market.US].probes == ()
            with pytest.raises(TypeError, match="every must be a bool"):
                await store.sync(client, US_ONLY, every=1)  # type: ignore[arg-type]
