"""Interop proof: the unmodified official SDK (moomoo-api) works against the simulator.

If the official client accepts every frame the simulator sends and pages to the same rows the
simulator holds, the simulator speaks OpenD's protocol, and tests that pass against it mean
something for a real gateway.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest

from aiomoomoo.testing import Faults, Quota, SimulatorThread

from ._official import import_moomoo, quote_context

pytestmark = [
    # The official SDK calls Thread.setDaemon(), deprecated since Python 3.10.
    pytest.mark.filterwarnings(r"ignore:setDaemon\(\) is deprecated:DeprecationWarning"),
    # Its constructor retries InitConnect for ever: a broken simulator must fail, not hang.
    pytest.mark.timeout(60),
]

US_COLUMNS = [
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
]
HK_COLUMNS = [
    "timestamp",
    "timestamp_str",
    "aggregated_short",
    "aggregated_short_ratio",
    "close_price",
    "last_close_price",
]


@pytest.fixture(scope="module")
def moomoo() -> ModuleType:
    """The official SDK, imported without keeping the SIGINT handler it installs."""
    return import_moomoo()


def page_through(
    moomoo: ModuleType, ctx: Any, code: str, num: int
) -> tuple[dict[str, list[Any]], int]:
    """Every row of ``code`` as columns, following ``next_key`` to ``"-1"``; also the page count."""
    us = code.startswith("US.")
    columns = US_COLUMNS if us else HK_COLUMNS
    collected: dict[str, list[Any]] = {column: [] for column in columns}
    next_key = None
    pages = 0
    while next_key != "-1":
        assert pages < 500, "next_key never reached -1"
        ret, us_df, hk_df = ctx.get_short_interest(code, next_key=next_key, num=num)
        assert ret == moomoo.RET_OK, us_df
        pages += 1
        df, other = (us_df, hk_df) if us else (hk_df, us_df)
        assert list(df.columns) == columns
        assert other.empty
        assert df.attrs == other.attrs
        next_key = df.attrs["next_key"]
        assert next_key != ""
        if next_key != "-1":
            assert len(df) == num
        for column in columns:
            collected[column] += df[column].tolist()
    return collected, pages


@pytest.mark.parametrize(
    ("quota", "num"),
    [(None, 7), (Quota(), 50)],
    ids=["no-quota-num-7", "quota-30-per-30s-num-50"],
)
def test_official_client_pages_through_full_histories(
    moomoo: ModuleType, quota: Quota | None, num: int
) -> None:
    with SimulatorThread(quota=quota) as sim, quote_context(moomoo, sim) as ctx:
        total_pages = 0
        for code in ("US.AAPL", "HK.00700"):
            rows = sim.history(code)
            assert len(rows) > 100
            columns, pages = page_through(moomoo, ctx, code, num)
            total_pages += pages
            assert pages == math.ceil(len(rows) / num)
            for column, values in columns.items():
                assert values == [getattr(row, column) for row in rows], column
        assert sim.stats.requests == total_pages
        assert sim.stats.rate_limited == 0
        assert sim.stats.failed == 0
        if quota is not None:
            assert total_pages < quota.max_requests


def test_official_client_reports_the_simulators_error_messages(moomoo: ModuleType) -> None:
    with SimulatorThread(quota=Quota(4, 30)) as sim, quote_context(moomoo, sim) as ctx:
        assert ctx.get_short_interest("US.NOSUCH") == (
            moomoo.RET_ERROR,
            "unknown stock",
            None,
        )
        assert ctx.get_short_interest("US.AAPL", num=51) == (
            moomoo.RET_ERROR,
            "num must be between 1 and 50, got 51",
            None,
        )
        ret, message, _ = ctx.get_short_interest("SH.600519")
        assert (ret, message) == (
            moomoo.RET_ERROR,
            "short interest covers HK and US securities only, not market 21",
        )
        assert ctx.get_short_interest("US.AAPL")[0] == moomoo.RET_OK
        assert ctx.get_short_interest("US.AAPL") == (
            moomoo.RET_ERROR,
            "Get Short Interest is too frequent, request failed, no more than 4 times every 30 "
            "seconds.",
            None,
        )


def test_official_client_gets_global_state(moomoo: ModuleType) -> None:
    with SimulatorThread(quota=None) as sim, quote_context(moomoo, sim) as ctx:
        ret, state = ctx.get_global_state()
        assert ret == moomoo.RET_OK, state
        assert state["qot_logined"] is True
        assert state["market_us"] == "CLOSED"
        assert state["server_ver"] == "1011"


def test_official_client_survives_pushes_that_reuse_serials(moomoo: ModuleType) -> None:
    with (
        SimulatorThread(quota=None, faults=Faults(push_every=1)) as sim,
        quote_context(moomoo, sim) as ctx,
    ):
        total_pages = 0
        for code in ("US.AAPL", "HK.00700"):
            columns, pages = page_through(moomoo, ctx, code, 50)
            total_pages += pages
            rows = sim.history(code)
            for column, values in columns.items():
                assert values == [getattr(row, column) for row in rows], column
        assert sim.stats.pushes == total_pages
        assert ctx.get_global_state()[0] == moomoo.RET_OK
