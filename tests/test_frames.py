"""DataFrames from short-interest rows: official column order, stable dtypes, missing values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Market, trading_dates
from aiomoomoo._frames import HistoryColumns, columns_for, empty_frame, rows_to_frame
from aiomoomoo._proto.Qot_GetShortInterest_pb2 import HkShortInterestItem, UsShortInterestItem

# The official SDK's lists (protocol notes, section 6), written out rather than imported.
OFFICIAL_US = [
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
]
OFFICIAL_HK = [
    "timestamp",
    "timestamp_str",
    "aggregated_short",
    "aggregated_short_ratio",
    "close_price",
    "last_close_price",
]
INT64 = pd.Int64Dtype()
FLOAT64 = np.dtype("float64")
STRING = pd.StringDtype()
US_DTYPES = {
    "timestamp": INT64,
    "timestamp_str": STRING,
    "shares_short": INT64,
    "short_percent": FLOAT64,
    "avg_daily_share_volume": INT64,
    "days_to_cover": FLOAT64,
    "close_price": FLOAT64,
    "last_close_price": FLOAT64,
}
HK_DTYPES = {
    "timestamp": INT64,
    "timestamp_str": STRING,
    "aggregated_short": INT64,
    "aggregated_short_ratio": FLOAT64,
    "close_price": FLOAT64,
    "last_close_price": FLOAT64,
}
EXPECTED_DTYPES = {Market.US: US_DTYPES, Market.HK: HK_DTYPES}


def midnight(day: dt.date, market: Market) -> int:
    return int(dt.datetime.combine(day, dt.time(), ZoneInfo(market.timezone)).timestamp())


def us_item(day: dt.date, **fields: object) -> UsShortInterestItem:
    values: dict[str, object] = {
        "timestamp": midnight(day, Market.US),
        "timestampStr": day.isoformat(),
        "sharesShort": 111_222_333,
        "shortPercent": 0.75,
        "avgDailyShareVolume": 52_000_000,
        "daysToCover": 2.14,
        "closePrice": 271.5,
        "lastClosePrice": 268.25,
    }
    values.update(fields)
    return UsShortInterestItem(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def hk_item(day: dt.date, **fields: object) -> HkShortInterestItem:
    values: dict[str, object] = {
        "timestamp": midnight(day, Market.HK),
        "timestampStr": day.isoformat(),
        "closePrice": 467.8,
        "lastClosePrice": 470.2,
        "aggregatedShort": 50_600_000,
        "aggregatedShortRatio": 0.55,
    }
    values.update(fields)
    return HkShortInterestItem(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def dtypes(frame: pd.DataFrame) -> dict[str, object]:
    return {str(column): dtype for column, dtype in frame.dtypes.items()}


def test_columns_are_the_official_order() -> None:
    assert list(US_COLUMNS) == OFFICIAL_US
    assert list(HK_COLUMNS) == OFFICIAL_HK
    assert columns_for(Market.US) == US_COLUMNS
    assert columns_for(Market.HK) == HK_COLUMNS


def test_us_rows() -> None:
    day = dt.date(2026, 4, 15)
    frame = rows_to_frame(Market.US, [us_item(day), us_item(dt.date(2026, 3, 31))])
    assert list(frame.columns) == OFFICIAL_US
    assert dtypes(frame) == US_DTYPES
    assert frame.index.tolist() == [0, 1]
    first = frame.iloc[0]
    assert first["timestamp"] == midnight(day, Market.US)
    assert first["timestamp_str"] == "2026-04-15"
    assert first["shares_short"] == 111_222_333
    assert first["short_percent"] == 0.75
    assert first["avg_daily_share_volume"] == 52_000_000
    assert first["days_to_cover"] == 2.14
    assert first["close_price"] == 271.5
    assert first["last_close_price"] == 268.25
    assert frame["timestamp_str"].tolist() == ["2026-04-15", "2026-03-31"]


def test_hk_rows_put_aggregates_before_prices() -> None:
    frame = rows_to_frame(Market.HK, [hk_item(dt.date(2026, 4, 24))])
    assert list(frame.columns) == OFFICIAL_HK
    assert dtypes(frame) == HK_DTYPES
    assert frame.iloc[0].tolist() == [
        midnight(dt.date(2026, 4, 24), Market.HK),
        "2026-04-24",
        50_600_000,
        0.55,
        467.8,
        470.2,
    ]


@pytest.mark.parametrize("market", list(Market))
def test_empty_frames_have_the_same_columns_and_dtypes(market: Market) -> None:
    for frame in (empty_frame(market), rows_to_frame(market, [])):
        assert frame.shape == (0, len(columns_for(market)))
        assert list(frame.columns) == list(columns_for(market))
        assert dtypes(frame) == EXPECTED_DTYPES[market]


def test_absent_fields_become_missing_values_and_keep_dtypes() -> None:
    day = dt.date(2026, 4, 15)
    frame = rows_to_frame(
        Market.US,
        [
            us_item(day, sharesShort=None, shortPercent=None, timestampStr=None),
            us_item(day, closePrice=None),
            UsShortInterestItem(),
        ],
    )
    assert dtypes(frame) == US_DTYPES
    assert frame["shares_short"].tolist() == [pd.NA, 111_222_333, pd.NA]
    assert frame["shares_short"].isna().tolist() == [True, False, True]
    assert np.isnan(frame["short_percent"].iloc[0])
    assert frame["timestamp_str"].isna().tolist() == [True, False, True]
    assert frame["close_price"].isna().tolist() == [False, True, True]
    assert frame.iloc[2].isna().all()
    # A zero that was sent is a value, not a missing one.
    zeros = rows_to_frame(Market.HK, [hk_item(day, aggregatedShort=0, closePrice=0.0)])
    assert zeros["aggregated_short"].tolist() == [0]
    assert zeros["close_price"].tolist() == [0.0]
    assert not zeros.isna().any().any()


def test_a_column_absent_from_every_row_keeps_its_dtype() -> None:
    frame = rows_to_frame(Market.HK, [hk_item(dt.date(2026, 4, 24), aggregatedShort=None)] * 3)
    assert dtypes(frame) == HK_DTYPES
    assert frame["aggregated_short"].isna().all()


# An explicit alphabet (ASCII, Latin-1, CJK, an astral emoji) rather than st.text()'s default:
# the default makes Hypothesis build its Unicode category table on first use, which with a cold
# .hypothesis/ cache took seconds on a loaded machine and failed the too_slow health check.
_TEXT = st.text(alphabet="0123456789-: /abcXYZ\u00e9\u00df\u4e2d\u6587\U0001f4c8", max_size=12)
_US_FIELDS = {
    "timestamp": st.integers(0, 2**40),
    "timestampStr": _TEXT,
    # uint64 on the wire; Int64 holds every count a real reply carries.
    "sharesShort": st.integers(0, 2**63 - 1),
    "shortPercent": st.floats(allow_nan=False),
    "avgDailyShareVolume": st.integers(0, 2**63 - 1),
    "daysToCover": st.floats(allow_nan=False),
    "closePrice": st.floats(allow_nan=False),
    "lastClosePrice": st.floats(allow_nan=False),
}
_US_ITEMS = st.fixed_dictionaries({}, optional=_US_FIELDS).map(
    lambda fields: UsShortInterestItem(**fields)  # type: ignore[arg-type]
)


@given(st.lists(_US_ITEMS, max_size=8))
def test_any_mix_of_present_fields_gives_the_same_dtypes_and_the_values_sent(
    items: list[UsShortInterestItem],
) -> None:
    frame = rows_to_frame(Market.US, items)
    assert dtypes(frame) == US_DTYPES
    assert len(frame) == len(items)
    for column, field in zip(OFFICIAL_US, _US_FIELDS, strict=True):
        for row, item in enumerate(items):
            value = frame[column].iloc[row]
            if item.HasField(field):  # type: ignore[arg-type]
                assert value == getattr(item, field), (column, row)
            else:
                assert pd.isna(value), (column, row)


def test_trading_dates_are_midnight_in_the_markets_timezone() -> None:
    hk_day, us_day = dt.date(2026, 4, 24), dt.date(2026, 4, 15)
    hk = trading_dates(rows_to_frame(Market.HK, [hk_item(hk_day)]), Market.HK)
    us = trading_dates(rows_to_frame(Market.US, [us_item(us_day)]), Market.US)
    assert hk.iloc[0] == pd.Timestamp("2026-04-24 00:00", tz="Asia/Hong_Kong")
    assert us.iloc[0] == pd.Timestamp("2026-04-15 00:00", tz="America/New_York")
    assert hk.dt.date.tolist() == [hk_day]
    assert us.dt.date.tolist() == [us_day]
    assert str(hk.dt.tz) == "Asia/Hong_Kong"
    # What the conversion guards against: read naively in UTC, the HK row is a day early.
    naive = pd.to_datetime(rows_to_frame(Market.HK, [hk_item(hk_day)])["timestamp"], unit="s")
    assert naive.dt.date.tolist() == [hk_day - dt.timedelta(days=1)]


def test_trading_dates_match_timestamp_str_across_dst_and_years() -> None:
    days = [dt.date(2019, 1, 2) + dt.timedelta(days=17 * i) for i in range(160)]
    for market, make in ((Market.US, us_item), (Market.HK, hk_item)):
        frame = rows_to_frame(market, [make(day) for day in days])
        dates = trading_dates(frame, market)
        assert dates.dt.date.tolist() == days
        assert (dates.dt.hour == 0).all()
        assert [d.isoformat() for d in dates.dt.date] == frame["timestamp_str"].tolist()


def test_trading_dates_of_missing_and_empty() -> None:
    frame = rows_to_frame(
        Market.HK, [hk_item(dt.date(2026, 4, 24)), hk_item(dt.date(2026, 4, 17), timestamp=None)]
    )
    dates = trading_dates(frame, Market.HK)
    assert dates.isna().tolist() == [False, True]
    empty = trading_dates(empty_frame(Market.US), Market.US)
    assert len(empty) == 0
    assert str(empty.dt.tz) == "America/New_York"


def test_a_share_count_beyond_int64_is_a_protocol_error() -> None:
    from aiomoomoo import ProtocolError
    from aiomoomoo._proto import Qot_GetShortInterest_pb2

    item = Qot_GetShortInterest_pb2.UsShortInterestItem(timestamp=1, sharesShort=2**63)
    with pytest.raises(ProtocolError, match="sharesShort beyond the int64 range"):
        rows_to_frame(Market.US, [item])


# -- a history built page by page -----------------------------------------------------------


@given(st.lists(st.lists(_US_ITEMS, max_size=6), max_size=5))
def test_a_history_added_page_by_page_is_the_frame_of_all_its_rows(
    pages: list[list[UsShortInterestItem]],
) -> None:
    columns = HistoryColumns(Market.US)
    for page in pages:
        columns.add(page)
    everything = [item for page in pages for item in page]
    assert len(columns) == len(everything)
    frame = columns.frame()
    assert dtypes(frame) == US_DTYPES
    pd.testing.assert_frame_equal(frame, rows_to_frame(Market.US, everything))


def test_a_history_keeps_missing_values_of_every_kind_across_pages() -> None:
    day = dt.date(2026, 4, 24)
    columns = HistoryColumns(Market.HK)
    columns.add([hk_item(day)])
    columns.add([hk_item(day, aggregatedShort=None, closePrice=None, timestampStr=None)])
    columns.add([])
    columns.add([hk_item(day, aggregatedShort=0, closePrice=0.0)])
    frame = columns.frame()
    assert dtypes(frame) == HK_DTYPES
    assert frame["aggregated_short"].tolist() == [50_600_000, pd.NA, 0]
    assert frame["close_price"].isna().tolist() == [False, True, False]
    assert frame["timestamp_str"].isna().tolist() == [False, True, False]
    assert frame.index.tolist() == [0, 1, 2]


@pytest.mark.parametrize("market", list(Market))
def test_a_history_without_pages_is_an_empty_frame_with_dtypes(market: Market) -> None:
    frame = HistoryColumns(market).frame(dt.date(2025, 1, 1))
    pd.testing.assert_frame_equal(frame, empty_frame(market))


def test_a_share_count_beyond_int64_on_a_later_page_is_a_protocol_error() -> None:
    from aiomoomoo import ProtocolError

    columns = HistoryColumns(Market.US)
    columns.add([us_item(dt.date(2026, 4, 24))])
    with pytest.raises(ProtocolError, match="sharesShort beyond the int64 range"):
        columns.add([us_item(dt.date(2026, 4, 17), sharesShort=2**63)])


def test_a_history_gives_its_frame_once() -> None:
    columns = HistoryColumns(Market.US)
    columns.add([us_item(dt.date(2026, 4, 24))])
    assert len(columns.frame()) == 1
    with pytest.raises(RuntimeError, match="already built"):
        columns.frame()
