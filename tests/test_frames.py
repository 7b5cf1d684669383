"""DataFrames from short-interest rows: official column order, stable dtypes, missing values.

Rows are written as protobuf messages and read back through the message layer, as a reply's are,
so each frame is checked against what was sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Market, _frames, trading_dates
from aiomoomoo._frames import HistoryColumns, columns_for, empty_frame, rows_to_frame
from aiomoomoo._proto.Qot_GetShortInterest_pb2 import HkShortInterestItem, UsShortInterestItem

from ._fakes import rows_of

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


def frame_of(market: Market, items: Sequence[Any]) -> pd.DataFrame:
    """The frame of ``market``'s protobuf ``items``, read as the message layer reads a reply."""
    return rows_to_frame(rows_of(market, items))


def dtypes(frame: pd.DataFrame) -> dict[str, object]:
    return {str(column): dtype for column, dtype in frame.dtypes.items()}


def test_columns_are_the_official_order() -> None:
    assert list(US_COLUMNS) == OFFICIAL_US
    assert list(HK_COLUMNS) == OFFICIAL_HK
    assert columns_for(Market.US) == US_COLUMNS
    assert columns_for(Market.HK) == HK_COLUMNS


def test_us_rows() -> None:
    day = dt.date(2026, 4, 15)
    frame = frame_of(Market.US, [us_item(day), us_item(dt.date(2026, 3, 31))])
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
    frame = frame_of(Market.HK, [hk_item(dt.date(2026, 4, 24))])
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
    for frame in (empty_frame(market), frame_of(market, [])):
        assert frame.shape == (0, len(columns_for(market)))
        assert list(frame.columns) == list(columns_for(market))
        assert dtypes(frame) == EXPECTED_DTYPES[market]


def test_absent_fields_become_missing_values_and_keep_dtypes() -> None:
    day = dt.date(2026, 4, 15)
    frame = frame_of(
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
    zeros = frame_of(Market.HK, [hk_item(day, aggregatedShort=0, closePrice=0.0)])
    assert zeros["aggregated_short"].tolist() == [0]
    assert zeros["close_price"].tolist() == [0.0]
    assert not zeros.isna().any().any()


def test_a_column_absent_from_every_row_keeps_its_dtype() -> None:
    frame = frame_of(Market.HK, [hk_item(dt.date(2026, 4, 24), aggregatedShort=None)] * 3)
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
    frame = frame_of(Market.US, items)
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
    hk = trading_dates(frame_of(Market.HK, [hk_item(hk_day)]), Market.HK)
    us = trading_dates(frame_of(Market.US, [us_item(us_day)]), Market.US)
    assert hk.iloc[0] == pd.Timestamp("2026-04-24 00:00", tz="Asia/Hong_Kong")
    assert us.iloc[0] == pd.Timestamp("2026-04-15 00:00", tz="America/New_York")
    assert hk.dt.date.tolist() == [hk_day]
    assert us.dt.date.tolist() == [us_day]
    assert str(hk.dt.tz) == "Asia/Hong_Kong"
    # What the conversion guards against: read naively in UTC, the HK row is a day early.
    naive = pd.to_datetime(frame_of(Market.HK, [hk_item(hk_day)])["timestamp"], unit="s")
    assert naive.dt.date.tolist() == [hk_day - dt.timedelta(days=1)]


def test_trading_dates_match_timestamp_str_across_dst_and_years() -> None:
    days = [dt.date(2019, 1, 2) + dt.timedelta(days=17 * i) for i in range(160)]
    for market, make in ((Market.US, us_item), (Market.HK, hk_item)):
        frame = frame_of(market, [make(day) for day in days])
        dates = trading_dates(frame, market)
        assert dates.dt.date.tolist() == days
        assert (dates.dt.hour == 0).all()
        assert [d.isoformat() for d in dates.dt.date] == frame["timestamp_str"].tolist()


def test_trading_dates_of_missing_and_empty() -> None:
    frame = frame_of(
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
        frame_of(Market.US, [item])


# -- a history built page by page -----------------------------------------------------------


@given(st.lists(st.lists(_US_ITEMS, max_size=6), max_size=5))
def test_a_history_added_page_by_page_is_the_frame_of_all_its_rows(
    pages: list[list[UsShortInterestItem]],
) -> None:
    columns = HistoryColumns(Market.US)
    for page in pages:
        columns.add(rows_of(Market.US, page))
    everything = [item for page in pages for item in page]
    assert len(columns) == len(everything)
    frame = columns.frame()
    assert dtypes(frame) == US_DTYPES
    pd.testing.assert_frame_equal(frame, frame_of(Market.US, everything))


def test_a_history_keeps_missing_values_of_every_kind_across_pages() -> None:
    day = dt.date(2026, 4, 24)
    columns = HistoryColumns(Market.HK)
    columns.add(rows_of(Market.HK, [hk_item(day)]))
    columns.add(
        rows_of(Market.HK, [hk_item(day, aggregatedShort=None, closePrice=None, timestampStr=None)])
    )
    columns.add(rows_of(Market.HK, []))
    columns.add(rows_of(Market.HK, [hk_item(day, aggregatedShort=0, closePrice=0.0)]))
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
    columns.add(rows_of(Market.US, [us_item(dt.date(2026, 4, 24))]))
    with pytest.raises(ProtocolError, match="sharesShort beyond the int64 range"):
        columns.add(rows_of(Market.US, [us_item(dt.date(2026, 4, 17), sharesShort=2**63)]))


def test_a_history_gives_its_frame_once() -> None:
    columns = HistoryColumns(Market.US)
    columns.add(rows_of(Market.US, [us_item(dt.date(2026, 4, 24))]))
    assert len(columns.frame()) == 1
    with pytest.raises(RuntimeError, match="already built"):
        columns.frame()


# -- the block-by-block build gives exactly the straightforward frame ------------------------

# Each field sent with its default value (0, 0.0, "": what an absent field reads as) as well as
# anything else, floats including NaN and infinities.
_INT = st.just(0) | st.integers(0, 2**63 - 1)
_FLOAT = st.just(0.0) | st.floats()
_STR = st.just("") | _TEXT
# (column, protobuf field, strategy) per market, in column order.
_SPEC = {
    Market.US: [
        ("timestamp", "timestamp", _INT),
        ("timestamp_str", "timestampStr", _STR),
        ("shares_short", "sharesShort", _INT),
        ("short_percent", "shortPercent", _FLOAT),
        ("avg_daily_share_volume", "avgDailyShareVolume", _INT),
        ("days_to_cover", "daysToCover", _FLOAT),
        ("close_price", "closePrice", _FLOAT),
        ("last_close_price", "lastClosePrice", _FLOAT),
    ],
    Market.HK: [
        ("timestamp", "timestamp", _INT),
        ("timestamp_str", "timestampStr", _STR),
        ("aggregated_short", "aggregatedShort", _INT),
        ("aggregated_short_ratio", "aggregatedShortRatio", _FLOAT),
        ("close_price", "closePrice", _FLOAT),
        ("last_close_price", "lastClosePrice", _FLOAT),
    ],
}
_ITEM_TYPE = {Market.US: UsShortInterestItem, Market.HK: HkShortInterestItem}


def _items(market: Market) -> st.SearchStrategy[list[Any]]:
    fields = {field: strategy for _, field, strategy in _SPEC[market]}
    item = st.fixed_dictionaries({}, optional=fields).map(lambda f: _ITEM_TYPE[market](**f))
    return st.lists(item, max_size=8)


def straightforward(market: Market, items: Sequence[Any]) -> pd.DataFrame:
    """The frame built the obvious way: an object column per field, None where it is absent."""
    data = {
        column: pd.Series(
            [getattr(item, field) if item.HasField(field) else None for item in items],
            dtype=object,
        )
        for column, field, _ in _SPEC[market]
    }
    return pd.DataFrame(data).astype({c: str(d) for c, d in EXPECTED_DTYPES[market].items()})


@pytest.mark.parametrize("market", list(Market))
@given(data=st.data())
def test_a_page_frame_is_exactly_the_straightforward_one(
    market: Market, data: st.DataObject
) -> None:
    items = data.draw(_items(market))
    frame = frame_of(market, items)
    pd.testing.assert_frame_equal(frame, straightforward(market, items), check_exact=True)
    assert dtypes(frame) == EXPECTED_DTYPES[market]
    # And the whole-history path, through the same builder, gives the same frame.
    history = HistoryColumns(market)
    history.add(rows_of(market, items))
    pd.testing.assert_frame_equal(history.frame(), frame, check_exact=True)


@pytest.mark.parametrize("market", list(Market))
def test_every_field_absent_present_or_default_in_turn(market: Market) -> None:
    defaults = {"Int64": 0, "float64": 0.0, "string": ""}
    sent = {"Int64": 7, "float64": 2.5, "string": "2026-04-24"}
    items = []
    for _, field, _ in _SPEC[market]:
        for left_out in (True, False):
            values = {}
            for column, other, _ in _SPEC[market]:
                kind = str(EXPECTED_DTYPES[market][column])
                values[other] = sent[kind] if other != field else defaults[kind]
            if left_out:
                del values[field]
            items.append(_ITEM_TYPE[market](**values))
    for rows in (items, items[:1], []):
        frame = frame_of(market, rows)
        pd.testing.assert_frame_equal(frame, straightforward(market, rows), check_exact=True)
    assert frame_of(market, items).isna().sum().sum() == len(_SPEC[market])


def test_pages_are_built_by_blocks_on_this_pandas() -> None:
    # The public constructor is only a fallback for a pandas whose internals moved: if this
    # fails after a pandas upgrade, every page costs several times the CPU it did.
    assert _frames._build is _frames._block_frame


@pytest.mark.parametrize("market", list(Market))
def test_the_public_constructor_fallback_builds_the_same_frames(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2026, 4, 24)
    make = us_item if market is Market.US else hk_item
    items = [make(day), make(day, timestamp=None, timestampStr=None, closePrice=None), make(day)]
    fast = frame_of(market, items)
    monkeypatch.setattr(_frames, "_build", _frames._public_frame)
    pd.testing.assert_frame_equal(frame_of(market, items), fast, check_exact=True)
    pd.testing.assert_frame_equal(frame_of(market, []), empty_frame(market))


def test_frames_do_not_share_their_column_index() -> None:
    items = [us_item(dt.date(2026, 4, 24))]
    first = frame_of(Market.US, items)
    first.columns.name = "field"
    first.index.name = "row"
    first.loc[0, "shares_short"] = pd.NA
    second = frame_of(Market.US, items)
    assert second.columns.name is None
    assert second.index.name is None
    assert second["shares_short"].tolist() == [111_222_333]
    history = HistoryColumns(Market.US)
    history.add(rows_of(Market.US, items))
    assert history.frame().columns.name is None
