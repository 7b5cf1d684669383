"""``since`` without a socket: what the argument accepts and which rows a history keeps.

docs/paging.md: ``since`` is a date, a datetime (its date is used) or a ``"YYYY-MM-DD"`` string;
a history fetched with it holds "exactly the rows from since on", so a row on the day itself
stays, and so does a row OpenD sent without a date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from aiomoomoo import Market
from aiomoomoo._frames import HistoryColumns
from aiomoomoo._options import check_since
from aiomoomoo._proto import Qot_GetShortInterest_pb2

from ._fakes import rows_of


@pytest.mark.parametrize(
    "since",
    ["2025-03-03", dt.date(2025, 3, 3), dt.datetime(2025, 3, 3), dt.datetime(2025, 3, 3, 23, 59)],
    ids=["str", "date", "datetime-midnight", "datetime-late"],
)
def test_every_documented_form_is_the_same_day(since: object) -> None:
    day = check_since(since)
    assert day == dt.date(2025, 3, 3)
    # A datetime is a date too: it must come back as a plain date, or its isoformat() would
    # carry a time that makes the day itself compare as older.
    assert type(day) is dt.date


def test_no_since_is_none() -> None:
    assert check_since(None) is None


@pytest.mark.parametrize("bad", ["2025-02-30", "03/03/2025", ""])
def test_a_string_that_is_not_a_date_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        check_since(bad)


@pytest.mark.parametrize("bad", [20250303, 1.5, b"2025-03-03"])
def test_anything_else_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="since must be"):
        check_since(bad)


def _items(*dates: str | None) -> list[Qot_GetShortInterest_pb2.UsShortInterestItem]:
    items = []
    for n, day in enumerate(dates):
        item = Qot_GetShortInterest_pb2.UsShortInterestItem(sharesShort=n + 1)
        if day is not None:
            item.timestampStr = day
        items.append(item)
    return items


def history_frame(
    market: Market, items: list[Qot_GetShortInterest_pb2.UsShortInterestItem], since: dt.date | None
) -> pd.DataFrame:
    """The history of one page of ``items``, from ``since`` on."""
    columns = HistoryColumns(market)
    columns.add(rows_of(market, items))
    return columns.frame(since)


def test_a_history_keeps_the_day_itself_and_undated_rows() -> None:
    items = _items("2025-03-10", None, "2025-03-03", "2025-03-02", None, "2025-02-28")
    frame = history_frame(Market.US, items, dt.date(2025, 3, 3))
    assert frame["shares_short"].tolist() == [1, 2, 3, 5]
    assert frame.index.tolist() == [0, 1, 2, 3]


def test_a_history_without_since_keeps_everything() -> None:
    items = _items("2025-03-10", None, "1999-01-01")
    assert history_frame(Market.US, items, None)["shares_short"].tolist() == [1, 2, 3]


def test_a_history_with_nothing_from_since_on_is_empty_with_its_columns() -> None:
    frame = history_frame(Market.US, _items("2025-03-02", "2025-02-28"), dt.date(2025, 3, 3))
    assert len(frame) == 0
    assert str(frame["shares_short"].dtype) == "Int64"
