"""`aiomoomoo._paging.walk`, pure: a fake fetch function and pages of plain rows, no sockets.

The one walk behind `iter_short_interest`, `fetch_short_interest`, the many-symbol fetches and
the store's sync: it follows ``next_key`` or where its caller says to continue, stops at ``"-1"``
or at ``since``, and ends with `ProtocolError` when it would go round in circles.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aiomoomoo import ProtocolError, ShortInterestPage
from aiomoomoo._options import END_OF_DATA
from aiomoomoo._paging import walk
from aiomoomoo._rows import US_COLUMNS, Rows
from aiomoomoo._security import Market, Security, parse_code

pytestmark = pytest.mark.anyio

AAPL = parse_code("US.AAPL")


def fake_page(security: Security, dates: list[str | None], next_key: str) -> ShortInterestPage:
    """A real page of plain rows with these dates (None: a row that left its date out)."""
    n = len(dates)
    width = len(US_COLUMNS)
    values: list[tuple[Any, ...]] = [(1,) * n] * width
    values[0] = (0,) * n  # every timestamp left out
    values[1] = tuple(day or "" for day in dates)
    left_out: list[tuple[bool, ...] | None] = [None] * width
    left_out[0] = (True,) * n
    if None in dates:
        left_out[1] = tuple(day is None for day in dates)
    us = Rows(Market.US, n, tuple(values), tuple(left_out))
    return ShortInterestPage(security, next_key, us, Rows.empty(Market.HK))


def gateway(pages: dict[str | None, tuple[list[str | None], str]]) -> tuple[Any, list[str | None]]:
    """A fetch function answering each key from ``pages``, and the keys it was asked for."""
    asked: list[str | None] = []

    async def fetch(security: Security, key: str | None, num: int | None) -> ShortInterestPage:
        asked.append(key)
        dates, next_key = pages[key]
        return fake_page(security, dates, next_key)

    return fetch, asked


def day(n: int) -> str:
    """The n-th date before 2026-04-30, as OpenD writes dates."""
    return (dt.date(2026, 4, 30) - dt.timedelta(days=n)).isoformat()


HISTORY: dict[str | None, tuple[list[str | None], str]] = {
    None: ([day(0), day(1)], "k1"),
    "k1": ([day(2), day(3)], "k2"),
    "k2": ([day(4), day(5)], "k3"),
    "k3": ([day(6)], END_OF_DATA),
}


async def test_the_walk_follows_next_key_to_the_end() -> None:
    fetch, asked = gateway(HISTORY)
    pages = [page async for page in walk(fetch, AAPL, num=2)]
    assert [page.next_key for page in pages] == ["k1", "k2", "k3", END_OF_DATA]
    assert asked == [None, "k1", "k2", "k3"]


async def test_continue_at_says_where_the_walk_goes_after_each_page() -> None:
    fetch, asked = gateway(HISTORY)
    consumed: list[str] = []

    def continue_at(page: ShortInterestPage) -> str:
        consumed.append(page.next_key)
        # After the first page, jump past what a store already holds.
        return "k3" if page.next_key == "k1" else page.next_key

    pages = [page async for page in walk(fetch, AAPL, num=2, continue_at=continue_at)]
    assert asked == [None, "k3"]
    assert len(pages) == 2
    assert consumed == ["k1", END_OF_DATA]
    # "-1" from the hook ends the walk, whatever the page said.
    fetch, asked = gateway(HISTORY)
    assert len([p async for p in walk(fetch, AAPL, num=2, continue_at=lambda p: "-1")]) == 1
    assert asked == [None]


async def test_a_key_fetched_before_ends_the_walk() -> None:
    fetch, asked = gateway({**HISTORY, "k2": ([day(4)], "k1")})
    with pytest.raises(ProtocolError, match=r"next_key 'k1' for US\.AAPL again"):
        async for _ in walk(fetch, AAPL, num=2):
            pass
    assert asked == [None, "k1", "k2"]


@pytest.mark.parametrize(
    ("second", "dates"),
    [
        ([day(0), day(1)], "2026-04-29 to 2026-04-30 after rows dated down to 2026-04-29"),
        ([day(1), day(2)], "2026-04-28 to 2026-04-29 after rows dated down to 2026-04-29"),
        ([day(5), day(-3)], "2026-04-25 to 2026-05-03 after rows dated down to 2026-04-29"),
    ],
    ids=["the-same-rows", "one-row-again", "one-row-newer"],
)
async def test_a_page_no_older_than_the_pages_before_ends_the_walk(
    second: list[str | None], dates: str
) -> None:
    # A fresh key every time: only the rows show that the walk goes round in circles.
    fetch, asked = gateway({None: ([day(0), day(1)], "k1"), "k1": (second, "k2")})
    pages: list[ShortInterestPage] = []

    async def consume() -> None:
        async for page in walk(fetch, AAPL, num=2):
            pages.append(page)

    with pytest.raises(ProtocolError, match="no progress") as caught:
        await consume()
    assert "US.AAPL" in str(caught.value)
    assert dates in str(caught.value)
    # The page that makes no progress is never handed out.
    assert len(pages) == 1
    assert asked == [None, "k1"]


async def test_undated_rows_and_empty_pages_do_not_trip_the_progress_guard() -> None:
    fetch, _ = gateway(
        {
            None: ([day(0), None], "k1"),
            "k1": ([], "k2"),
            "k2": ([None, day(1)], "k3"),
            "k3": ([], END_OF_DATA),
        }
    )
    assert len([page async for page in walk(fetch, AAPL, num=2)]) == 4


async def test_since_ends_the_walk_after_the_first_page_reaching_older_rows() -> None:
    fetch, asked = gateway(HISTORY)
    since = dt.date.fromisoformat(day(2))
    pages = [page async for page in walk(fetch, AAPL, num=2, since=since)]
    # The page holding day(2) and day(3) reaches before since: it is the last one.
    assert asked == [None, "k1"]
    assert len(pages) == 2
    # since on a page's oldest day itself does not stop the walk there.
    fetch, asked = gateway(HISTORY)
    since = dt.date.fromisoformat(day(1))
    assert len([p async for p in walk(fetch, AAPL, num=2, since=since)]) == 2
