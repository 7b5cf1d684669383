"""Screens and changes across codes (``ShortInterestStore.screen`` and ``changes``): each
condition, the order, and which version of a revised value counts at ``as_of``."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiomoomoo import ShortInterestStore

from ._stores import hk, mixed, us, write

NEW, OLD, OLDER = "2026-04-30", "2026-04-15", "2026-03-31"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShortInterestStore]:
    """Newest rows: AAPL +50 % (dtc 5, 10 % short), MSFT -50 % (dtc 1), TSLA +10 % (dtc
    missing), NVDA one row, AMD +49.996 % (rounds to 50.0); HK: Tencent +20 %, HSBC -10 %."""
    path = tmp_path / "s.db"
    write(
        path,
        {
            "US.AAPL": [us(NEW, 150, 5.0, 10.0), us(OLD, 100)],
            "US.MSFT": [us(NEW, 50, 1.0, 2.0), us(OLD, 100)],
            "US.TSLA": [us(NEW, 110, None, 30.0), us(OLD, 100)],
            "US.NVDA": [us(NEW, 70, 9.0, 0.5)],
            "US.AMD": [us(NEW, 74_998, 3.0), us(OLD, 50_000), us(OLDER, 10)],
            "HK.00700": [hk(NEW, 600, 0.8), hk(OLD, 500)],
            "HK.00005": [hk(NEW, 90, 0.1), hk(OLD, 100)],
        },
    )
    with ShortInterestStore(path) as opened:
        yield opened


def codes(frame: object) -> list[str]:
    return list(frame["code"])  # type: ignore[index]


def test_without_conditions_a_screen_is_latest(store: ShortInterestStore) -> None:
    for market in ("US", "HK", None):
        assert store.screen(market).equals(store.latest(market))


def test_each_condition_keeps_the_rows_within_its_bound(store: ShortInterestStore) -> None:
    assert codes(store.screen("US", min_days_to_cover=3)) == ["US.AAPL", "US.AMD", "US.NVDA"]
    # The bound is inclusive, and a missing value (TSLA's days to cover) never passes.
    assert codes(store.screen("US", min_days_to_cover=1)) == [
        "US.AAPL",
        "US.AMD",
        "US.MSFT",
        "US.NVDA",
    ]
    assert codes(store.screen("US", min_short_percent=10)) == ["US.AAPL", "US.TSLA"]
    # For HK the short percent is the aggregated short ratio.
    assert codes(store.screen("HK", min_short_percent=0.5)) == ["HK.00700"]
    assert codes(store.screen(min_short_percent=10)) == ["US.AAPL", "US.TSLA"]
    # NVDA has no previous period, so no change, and passes no change condition.
    assert codes(store.screen("US", min_change_percent=10)) == ["US.AAPL", "US.AMD", "US.TSLA"]
    assert codes(store.screen("US", max_change_percent=0)) == ["US.MSFT"]
    assert codes(store.screen(min_change_percent=-10, max_change_percent=20)) == [
        "HK.00005",
        "HK.00700",
        "US.TSLA",
    ]


def test_a_change_bound_compares_the_exact_change_not_the_rounded_column(
    store: ShortInterestStore,
) -> None:
    amd = store.screen("US", min_change_percent=49.99, max_change_percent=49.999)
    assert codes(amd) == ["US.AMD"]
    assert amd.loc[0, "shares_short_change_percent"] == 50.0  # 49.996 shown rounded
    assert codes(store.screen("US", min_change_percent=50)) == ["US.AAPL"]


def test_by_sorts_largest_first_missing_last_ties_by_code(store: ShortInterestStore) -> None:
    by_change = store.screen("US", by="shares_short_change_percent")
    assert codes(by_change) == ["US.AAPL", "US.AMD", "US.TSLA", "US.MSFT", "US.NVDA"]
    smallest = store.screen("US", by="change_percent", ascending=True)
    assert codes(smallest) == ["US.MSFT", "US.TSLA", "US.AMD", "US.AAPL", "US.NVDA"]
    assert codes(store.screen("US", by="days_to_cover", top=2)) == ["US.NVDA", "US.AAPL"]
    # Across markets "change_percent" is each market's own change; top cuts the merged list.
    both = store.screen(by="change_percent", top=4)
    assert codes(both) == ["US.AAPL", "US.AMD", "HK.00700", "US.TSLA"]


def test_conditions_that_do_not_apply_are_refused(store: ShortInterestStore) -> None:
    with pytest.raises(ValueError, match="min_days_to_cover does not apply to HK codes"):
        store.screen("HK", min_days_to_cover=1)
    with pytest.raises(ValueError, match="pass market='US'"):
        store.screen(min_days_to_cover=1)
    with pytest.raises(ValueError, match=r"by must be one of .*got 'days_to_cover'"):
        store.screen("HK", by="days_to_cover")
    with pytest.raises(TypeError, match="min_short_percent must be a number"):
        store.screen(min_short_percent="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a finite number"):
        store.screen(max_change_percent=float("nan"))
    with pytest.raises(ValueError, match="top must be at least 1"):
        store.screen(top=0)
    with pytest.raises(TypeError):
        store.screen(min_float=3)  # type: ignore[call-arg]


def test_changes_rank_by_absolute_percent_ties_by_code_one_row_last(
    store: ShortInterestStore,
) -> None:
    us_changes = store.changes("US")
    # AAPL +50 and MSFT -50 tie on the absolute change: by code; AMD's 49.996 is just below.
    assert codes(us_changes) == ["US.AAPL", "US.MSFT", "US.AMD", "US.TSLA", "US.NVDA"]
    assert us_changes["shares_short_change_percent"].tolist()[:4] == [50.0, -50.0, 50.0, 10.0]
    nvda = us_changes.iloc[-1]
    assert nvda["previous_date"] is None or nvda.isna()["previous_date"]
    assert nvda.isna()[["shares_short_previous", "shares_short_change"]].all()
    assert list(us_changes.columns) == [
        "code",
        "date",
        "previous_date",
        "shares_short",
        "shares_short_previous",
        "shares_short_change",
        "shares_short_change_percent",
    ]
    hk_changes = store.changes("HK")
    assert codes(hk_changes) == ["HK.00700", "HK.00005"]
    assert hk_changes["aggregated_short_change"].tolist() == [100, -10]


def test_changes_since_compare_with_the_row_on_or_before_that_date(
    store: ShortInterestStore,
) -> None:
    amd = store.changes("US", since="2026-04-01").set_index("code").loc["US.AMD"]
    assert (amd["previous_date"], amd["shares_short_previous"]) == (OLDER, 10)
    on_the_day = store.changes("US", since=OLD).set_index("code").loc["US.AMD"]
    assert on_the_day["previous_date"] == OLD
    # A code with no row that old has nothing to compare with.
    assert (
        store.changes("US", since="2026-04-01")
        .set_index("code")
        .isna()
        .loc["US.AAPL", "shares_short_previous"]
    )


def test_as_of_decides_which_version_of_a_revised_value_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    write(path, {"US.AAPL": [us(NEW, 150), us(OLD, 100)], "US.MSFT": [us(NEW, 120), us(OLD, 100)]})
    # FINRA revises AAPL's previous period: the change is now +25 %, not +50 %.
    write(path, {"US.AAPL": [us(NEW, 150), us(OLD, 120)]})
    with contextlib.closing(sqlite3.connect(path)) as db:
        (revised,) = db.execute(
            "SELECT superseded FROM versions WHERE superseded IS NOT NULL"
        ).fetchone()
    # The file keeps times as integer microseconds since the epoch.
    revised = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=revised)
    with ShortInterestStore(path) as store:
        before = revised - dt.timedelta(microseconds=1)
        then = store.changes("US", as_of=before)
        now = store.changes("US", as_of=revised)
        assert codes(then) == ["US.AAPL", "US.MSFT"]
        assert then["shares_short_change_percent"].tolist() == [50.0, 20.0]
        assert codes(now) == ["US.AAPL", "US.MSFT"]
        assert now["shares_short_change_percent"].tolist() == [25.0, 20.0]
        assert store.changes("US").equals(now)
        screened = store.screen("US", as_of=before, min_change_percent=30)
        assert codes(screened) == ["US.AAPL"]
        assert codes(store.screen("US", min_change_percent=30)) == []


def test_a_bigger_store_screens_as_latest_filtered(tmp_path: Path) -> None:
    mixed(tmp_path / "s.db", codes=20)
    with ShortInterestStore(tmp_path / "s.db") as store:
        latest = store.latest("US")
        keep = latest["shares_short_change_percent"] >= 0
        expected = latest[keep.fillna(False).to_numpy(dtype=bool)]
        expected = expected.sort_values(
            ["shares_short_change_percent", "code"], ascending=[False, True]
        ).reset_index(drop=True)
        screened = store.screen("US", min_change_percent=0, by="change_percent")
        assert screened.equals(expected)
