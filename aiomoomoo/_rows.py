"""A short-interest reply as plain values: what the message layer hands up to every other layer.

`aiomoomoo._messages` decodes a 3249 reply's protobuf into a `ShortInterestReply` whose rows are
`Rows`: one tuple of values per column, in the official SDK's column order, and for each column
which rows OpenD left the field out of. Paging, frames, the many-symbol runner and the store read
these, never protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from ._security import Market

__all__ = [
    "HK_COLUMNS",
    "KINDS",
    "US_COLUMNS",
    "Kind",
    "Rows",
    "ShortInterestReply",
    "columns_for",
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

# Where the trading date is in every market's columns.
_DATE_AT: Final = 1


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
