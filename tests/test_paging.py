"""The page object and the gathering of a walk's pages, over decoded replies and no socket.

Pages are built from replies decoded by the message layer (`tests._fakes.decoded`), so they hold
the plain columns a real page holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Market, ProtocolError, ShortInterestPage
from aiomoomoo._frames import empty_frame
from aiomoomoo._paging import collect
from aiomoomoo._proto.Qot_GetShortInterest_pb2 import HkShortInterestItem, UsShortInterestItem
from aiomoomoo._security import parse_code

from ._fakes import decoded

pytestmark = pytest.mark.anyio

AAPL = parse_code("US.AAPL")
NEW_YORK = ZoneInfo("America/New_York")
TENCENT = parse_code("HK.00700")


def midnight(day: str) -> int:
    """Midnight at the start of ``day`` in New York, as OpenD stamps a US row."""
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), NEW_YORK).timestamp())


def us_item(day: str | None, shares: int | None = 100) -> UsShortInterestItem:
    stamp = midnight(day) if day else 1_777_000_000
    item = UsShortInterestItem(timestamp=stamp, closePrice=10.5)
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
        (1_777_521_600, "2026-04-30", 1, None, None, None, 10.5, None),
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


# -- rows whose date cannot be right -----------------------------------------------------------

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
APRIL_30_NY = 1_777_521_600  # 2026-04-30T00:00-04:00


def item_of(security_market: Market, stamp: int | None, day: str | None) -> object:
    item = UsShortInterestItem() if security_market is Market.US else HkShortInterestItem()
    if stamp is not None:
        item.timestamp = stamp
    if day is not None:
        item.timestampStr = day
    return item


def page_of(market: Market, *rows: tuple[int | None, str | None]) -> ShortInterestPage:
    items = [item_of(market, stamp, day) for stamp, day in rows]
    if market is Market.US:
        return ShortInterestPage.from_reply(AAPL, decoded(items), asked="k7")
    return ShortInterestPage.from_reply(TENCENT, decoded(hk=items), asked="k7")


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ((APRIL_30_NY, "2026-04-30 00:00:00"), "'2026-04-30 00:00:00', which is not a YYYY-MM-DD"),
        ((APRIL_30_NY, "2026/04/30"), "'2026/04/30', which is not a YYYY-MM-DD"),
        ((APRIL_30_NY, "20260430"), "'20260430', which is not a YYYY-MM-DD"),
        ((APRIL_30_NY, "2026-02-30"), "'2026-02-30', which is not a YYYY-MM-DD"),
        ((None, "9999-12-31"), "'9999-12-31', which is not a YYYY-MM-DD date from 1900-01-01"),
        ((None, "1899-12-31"), "'1899-12-31', which is not"),
        ((0, "2026-04-30"), "'2026-04-30' with timestamp 0, which is not within a day"),
        ((APRIL_30_NY + 86_401, "2026-04-30"), "not within a day of that date's midnight"),
        ((2**62, None), "without a date and with timestamp 4611686018427387904"),
        ((-(2**62), ""), "without a date and with timestamp -4611686018427387904"),
    ],
    ids=[
        "date-and-time",
        "slashes",
        "no-dashes",
        "no-such-day",
        "year-9999",
        "before-1900",
        "timestamp-zero",
        "a-second-too-far",
        "absurd-timestamp-no-date",
        "absurd-timestamp-empty-date",
    ],
)
def test_a_row_whose_date_cannot_be_right_refuses_the_page_naming_it(
    row: tuple[int | None, str | None], shown: str
) -> None:
    good = (APRIL_30_NY - 15 * 86_400, "2026-04-15")
    with pytest.raises(ProtocolError) as caught:
        page_of(Market.US, (APRIL_30_NY, "2026-04-30"), good, row)
    message = str(caught.value)
    assert "US.AAPL" in message
    assert "row 2 of the page asked for with next_key 'k7'" in message
    assert shown in message


def test_an_hk_row_is_checked_against_hong_kong_midnight() -> None:
    midnight = int(dt.datetime(2026, 4, 30, tzinfo=HONG_KONG).timestamp())
    assert len(page_of(Market.HK, (midnight, "2026-04-30"))) == 1
    with pytest.raises(ProtocolError, match=r"HK\.00700 .*'2026-04-23' with timestamp"):
        page_of(Market.HK, (midnight, "2026-04-23"))


@pytest.mark.parametrize(
    "row",
    [
        (APRIL_30_NY, "2026-04-30"),  # midnight in New York, as documented
        (1_777_507_200, "2026-04-30"),  # midnight UTC
        (1_777_478_400, "2026-04-30"),  # midnight in Beijing
        (APRIL_30_NY + 86_399, "2026-04-30"),  # the end of the day
        (APRIL_30_NY - 86_400, "2026-04-30"),  # a day early, the most allowed
        (None, "2026-04-30"),  # no timestamp
        (APRIL_30_NY, None),  # no date text
        (APRIL_30_NY, ""),  # empty date text
        (None, None),  # neither: nothing to be wrong
        (0, None),  # the epoch, without a date
    ],
)
def test_rows_dated_by_any_convention_within_a_day_are_accepted(
    row: tuple[int | None, str | None],
) -> None:
    page = page_of(Market.US, row)
    assert page.records()[0][:2] == row
