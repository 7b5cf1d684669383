"""A short-interest reply as plain values: what the message layer hands up to every other layer.

`aiomoomoo._messages` decodes a 3249 reply's protobuf into a `ShortInterestReply` whose rows are
`Rows`: one tuple of values per column, in the official SDK's column order, and for each column
which rows OpenD left the field out of. Paging, frames, the many-symbol runner and the store read
these, never protobuf.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from ._security import Market

__all__ = [
    "EARLIEST_DATE",
    "HK_COLUMNS",
    "KINDS",
    "LATEST_DATE",
    "US_COLUMNS",
    "Kind",
    "Rows",
    "ShortInterestReply",
    "columns_for",
    "trading_date",
]

Kind = Literal["int", "float", "str"]

US_COLUMNS: Final = (
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
)
"""US frame columns, in the official SDK's order."""
HK_COLUMNS: Final = (
    "timestamp",
    "timestamp_str",
    "aggregated_short",
    "aggregated_short_ratio",
    "close_price",
    "last_close_price",
)
"""HK frame columns, in the official SDK's order (the aggregated columns before the prices,
the reverse of the protobuf's field order)."""

#: What each column holds: integers (within int64), floats, or text.
KINDS: Final[dict[str, Kind]] = {
    "timestamp": "int",
    "timestamp_str": "str",
    "shares_short": "int",
    "short_percent": "float",
    "avg_daily_share_volume": "int",
    "days_to_cover": "float",
    "close_price": "float",
    "last_close_price": "float",
    "aggregated_short": "int",
    "aggregated_short_ratio": "float",
}

# Where the timestamp and the trading date are in every market's columns.
_STAMP_AT: Final = 0
_DATE_AT: Final = 1

#: The first and last trading date a row may carry: far wider than any short-interest history,
#: narrow enough that date arithmetic on a stored row never leaves `datetime`'s range.
EARLIEST_DATE: Final = dt.date(1900, 1, 1)
LATEST_DATE: Final = dt.date(2100, 12, 31)
# How far a row's timestamp may be from midnight at the start of its date in the market's
# timezone. OpenD's documentation says midnight there, but what it sends for US rows is not
# public, so any convention within a day (UTC, Beijing time, the end of the day) is accepted.
_STAMP_SLACK: Final = 86_400
_DATE_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def trading_date(text: object) -> dt.date | None:
    """``text`` as a trading date: None unless it is ``YYYY-MM-DD`` text of a real day from
    `EARLIEST_DATE` to `LATEST_DATE`."""
    if not isinstance(text, str) or not _DATE_TEXT.fullmatch(text):
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST_DATE <= day <= LATEST_DATE else None


# What `_Midnights` gives for a text that is no trading date: no int64 timestamp is within a day
# of it, so the usual page's one range test sends such a row to the slow path that names it.
_NOT_A_DATE: Final = 1 << 80


class _Midnights:
    """Per market, the Unix time of midnight at the start of each date text seen (`_NOT_A_DATE`
    for a text that is no trading date): a page's dates are mostly the dates of the pages
    before, of every code of the market, so each row costs one dict lookup."""

    __slots__ = ("_known", "_zone", "earliest", "latest")

    _LIMIT: Final = 4096

    def __init__(self, market: Market) -> None:
        self._zone = ZoneInfo(market.timezone)
        self._known: dict[str, int] = {}
        self.earliest = self._midnight(EARLIEST_DATE) - _STAMP_SLACK
        self.latest = self._midnight(LATEST_DATE) + _STAMP_SLACK

    def _midnight(self, day: dt.date) -> int:
        return int(dt.datetime.combine(day, dt.time(), self._zone).timestamp())

    def of(self, texts: tuple[str, ...]) -> list[int]:
        known = self._known
        try:
            return list(map(known.__getitem__, texts))
        except KeyError:
            pass
        if len(known) > self._LIMIT:
            known.clear()  # a gateway sending junk dates cannot grow it for ever
        for text in texts:
            if text not in known:
                day = trading_date(text)
                known[text] = _NOT_A_DATE if day is None else self._midnight(day)
        return list(map(known.__getitem__, texts))


_MIDNIGHTS: Final = {market: _Midnights(market) for market in Market}


def columns_for(market: Market) -> tuple[str, ...]:
    """The column names of ``market``'s rows and frames."""
    return US_COLUMNS if market is Market.US else HK_COLUMNS


@dataclass(frozen=True, slots=True)
class Rows:
    """One market's rows of a reply, newest first, as columns in `columns_for` order.

    ``values`` holds one tuple per column, a value per row; where OpenD left a field out it holds
    what protobuf reads for it (0, 0.0 or ""), and ``left_out`` says so: per column, a flag per
    row, or None when no row of that column left it out (the usual case, which costs nothing).
    """

    market: Market
    count: int
    values: tuple[tuple[Any, ...], ...]
    left_out: tuple[tuple[bool, ...] | None, ...]

    @classmethod
    def empty(cls, market: Market) -> Rows:
        """No rows of ``market``."""
        width = len(columns_for(market))
        return cls(market, 0, ((),) * width, (None,) * width)

    def __len__(self) -> int:
        return self.count

    def records(self) -> list[tuple[Any, ...]]:
        """The rows as tuples in `columns_for` order, None where OpenD left a field out."""
        columns = self.values
        if any(gone is not None for gone in self.left_out):
            columns = tuple(
                values
                if gone is None
                else tuple(None if out else v for v, out in zip(values, gone, strict=True))
                for values, gone in zip(columns, self.left_out, strict=True)
            )
        return list(zip(*columns, strict=True))

    def date_span(self) -> tuple[str, str] | None:
        """The (oldest, newest) ``timestamp_str`` of the rows that have one; None if none has."""
        dates = self.values[_DATE_AT]
        gone = self.left_out[_DATE_AT]
        if gone is not None:
            dates = tuple(d for d, out in zip(dates, gone, strict=True) if not out)
        dated = [d for d in dates if d]
        return (min(dated), max(dated)) if dated else None

    def fault(self) -> tuple[int, str] | None:
        """The first row whose date cannot be right, as (its index, what is wrong); None if
        every row is sound.

        A row's ``timestamp_str``, unless left out or empty, must be a `trading_date`, and its
        ``timestamp``, unless left out, within a day of midnight at the start of that date in
        the market's timezone. A row without date text may carry any timestamp within a day of
        the dates allowed; a row without either is sound here (it has no date to be wrong).
        """
        if not self.count:
            return None
        midnights = _MIDNIGHTS[self.market]
        stamps, dates = self.values[_STAMP_AT], self.values[_DATE_AT]
        found = midnights.of(dates)
        # The usual page, every row dated and stamped within a day, passes this one test at C
        # speed; a row left without either field (its value 0 or "") is sent on to the rest.
        if max(map(abs, map(operator.sub, stamps, found))) <= _STAMP_SLACK:
            return None
        stamp_gone = self.left_out[_STAMP_AT] or (False,) * self.count
        date_gone = self.left_out[_DATE_AT] or (False,) * self.count
        rows = zip(stamps, dates, found, stamp_gone, date_gone, strict=True)
        for at, (stamp, text, midnight, no_stamp, no_date) in enumerate(rows):
            if no_date or not text:
                if no_stamp or midnights.earliest <= stamp <= midnights.latest:
                    continue
                return at, (
                    f"without a date and with timestamp {stamp}, which is no time from "
                    f"{EARLIEST_DATE} to {LATEST_DATE}"
                )
            if midnight == _NOT_A_DATE:
                shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}..."
                return at, (
                    f"dated {shown}, which is not a YYYY-MM-DD date from {EARLIEST_DATE} "
                    f"to {LATEST_DATE}"
                )
            if not no_stamp and abs(stamp - midnight) > _STAMP_SLACK:
                return at, (
                    f"dated {text!r} with timestamp {stamp}, which is not within a day of "
                    f"that date's midnight in {self.market.timezone} ({midnight})"
                )
        return None

    def oldest_date(self) -> str | None:
        """The last (oldest) row's ``timestamp_str``; None without rows or when it was left out."""
        if not self.count:
            return None
        gone = self.left_out[_DATE_AT]
        return None if gone is not None and gone[-1] else self.values[_DATE_AT][-1]


@dataclass(frozen=True, slots=True)
class ShortInterestReply:
    """A decoded 3249 reply: its result, the key of the next page and both markets' rows.

    ``err_code`` and ``next_key`` are None when the reply left them out.
    """

    ret_type: int
    ret_msg: str
    err_code: int | None
    next_key: str | None
    us: Rows
    hk: Rows

    def rows(self, market: Market) -> Rows:
        """The rows of ``market``."""
        return self.us if market is Market.US else self.hk
