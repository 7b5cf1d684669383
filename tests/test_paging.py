"""The page object and the gathering of a walk's pages, over decoded replies and no socket.

Pages are built from replies decoded by the message layer (`tests._fakes.decoded`), so they hold
the plain columns a real page holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Market, ShortInterestPage
from aiomoomoo._frames import empty_frame
from aiomoomoo._paging import collect
from aiomoomoo._proto.Qot_GetShortInterest_pb2 import HkShortInterestItem, UsShortInterestItem
from aiomoomoo._security import parse_code

from ._fakes import decoded

pytestmark = pytest.mark.anyio

AAPL = parse_code("US.AAPL")
TENCENT = parse_code("HK.00700")


def us_item(day: str | None, shares: int | None = 100) -> UsShortInterestItem:
    item = UsShortInterestItem(timestamp=1_777_000_000, closePrice=10.5)
    if day is not None:
        item.timestampStr = day
    if shares is not None:
        item.sharesShort = shares
    return item


def us_page(*days: str | None, next_key: str | None = "k1") -> ShortInterestPage:
    items = [us_item(day, shares=n + 1) for n, day in enumerate(days)]
    return ShortInterestPage.from_reply(AAPL, decoded(items, next_key=next_key))


def test_a_reply_without_next_key_is_the_last_page() -> None:
    page = ShortInterestPage.from_reply(AAPL, decoded([us_item("2026-04-30")], next_key=None))
    assert page.next_key == "-1"
    assert not page.has_more
    assert page.us.attrs["next_key"] == "-1"
    minus_one = ShortInterestPage.from_reply(AAPL, decoded(next_key="-1"))
    assert not minus_one.has_more


def test_a_page_with_a_key_has_more() -> None:
    page = us_page("2026-04-30", next_key="k1")
    assert (page.next_key, page.has_more) == ("k1", True)
    assert page.us.attrs["next_key"] == "k1"


def test_a_page_names_its_code_and_market_and_counts_its_rows() -> None:
    page = us_page("2026-04-30", "2026-04-15")
    assert (page.code, page.market, page.security) == ("US.AAPL", Market.US, AAPL)
    assert len(page) == 2
    assert repr(page) == "<ShortInterestPage US.AAPL rows=2 next_key='k1'>"
    assert repr(us_page(next_key=None)) == "<ShortInterestPage US.AAPL rows=0 next_key='-1'>"


def test_records_are_plain_tuples_in_column_order_with_none_where_left_out() -> None:
    page = us_page("2026-04-30", None)
    records = page.records()
    assert records == [
        (1_777_000_000, "2026-04-30", 1, None, None, None, 10.5, None),
        (1_777_000_000, None, 2, None, None, None, 10.5, None),
    ]
    assert all(len(record) == len(US_COLUMNS) for record in records)
    assert us_page(next_key=None).records() == []


def test_records_of_an_hk_code_follow_the_hk_columns() -> None:
    item = HkShortInterestItem(timestampStr="2026-04-24", aggregatedShort=7, closePrice=467.8)
    page = ShortInterestPage.from_reply(TENCENT, decoded(hk=[item]))
    assert page.records() == [(None, "2026-04-24", 7, None, 467.8, None)]
    assert len(page.records()[0]) == len(HK_COLUMNS)


def test_frames_are_the_code_markets_rows_and_an_empty_frame_for_the_other() -> None:
    page = us_page("2026-04-30", "2026-04-15")
    assert page.frame is page.us
    assert page.us is page.us  # built once, when first read
    assert list(page.us.columns) == list(US_COLUMNS)
    assert page.us["shares_short"].tolist() == [1, 2]
    assert page.us["timestamp_str"].tolist() == ["2026-04-30", "2026-04-15"]
    assert page.us["short_percent"].isna().all()
    pd.testing.assert_frame_equal(page.hk, empty_frame(Market.HK), check_flags=False)
    hk_page = ShortInterestPage.from_reply(TENCENT, decoded(hk=[HkShortInterestItem()]))
    assert hk_page.frame is hk_page.hk
    assert len(hk_page.hk) == 1
    assert len(hk_page.us) == 0


def test_a_page_holding_both_markets_counts_both_but_records_its_own() -> None:
    reply = decoded([us_item("2026-04-30")], [HkShortInterestItem(aggregatedShort=1)] * 2)
    page = ShortInterestPage.from_reply(AAPL, reply)
    assert len(page) == 3
    assert (len(page.us), len(page.hk)) == (1, 2)
    assert len(page.records()) == 1


async def pages_of(*pages: ShortInterestPage) -> AsyncIterator[ShortInterestPage]:
    for page in pages:
        yield page


async def test_collect_gathers_pages_into_one_frame_from_since_on() -> None:
    first = us_page("2026-04-30", None, "2026-04-15")
    last = us_page("2026-04-01", "2026-03-31", next_key=None)
    seen: list[ShortInterestPage] = []
    frame = await collect(
        pages_of(first, last), AAPL, since=dt.date(2026, 4, 1), on_page=seen.append
    )
    assert seen == [first, last]
    # The undated row and the since day itself stay.
    assert frame["timestamp_str"].tolist() == ["2026-04-30", pd.NA, "2026-04-15", "2026-04-01"]
    assert frame["shares_short"].tolist() == [1, 2, 3, 1]
    assert frame.index.tolist() == [0, 1, 2, 3]
    assert frame.attrs["next_key"] == "-1"


async def test_collect_of_no_pages_is_an_empty_frame_with_dtypes() -> None:
    frame = await collect(pages_of(), TENCENT, since=None)
    pd.testing.assert_frame_equal(frame, empty_frame(Market.HK), check_flags=False)
    assert frame.attrs["next_key"] == "-1"


def test_the_oldest_date_a_walk_compares_with_since_is_the_last_rows() -> None:
    assert decoded([us_item("2026-04-30"), us_item("2026-04-15")]).us.oldest_date() == "2026-04-15"
    assert decoded([us_item("2026-04-30"), us_item(None)]).us.oldest_date() is None
    assert decoded([us_item("")]).us.oldest_date() == ""
    assert decoded().us.oldest_date() is None
