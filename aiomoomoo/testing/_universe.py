"""What the simulator serves: every symbol's history, newest first, and the index paging needs.

Nothing here knows about requests or sockets: the request handler asks the universe for a
code's `SymbolHistory` and pages through it.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from google.protobuf.message import Message

from .._security import Market, parse_code
from ._history import (
    BUILTIN_PROFILES,
    DEFAULT_AS_OF,
    HkRow,
    SymbolProfile,
    UsRow,
    generate_history,
)
from ._publication import check_publication_lag, published_on

__all__ = ["SymbolHistory", "Universe", "write_row"]

_NEXT_KEY: Final = re.compile(r"(@?)([0-9]{1,19})", re.ASCII)


class SymbolHistory:
    """One symbol's rows, newest first, with the lookup paging needs."""

    __slots__ = ("_descending", "market", "rows")

    def __init__(self, market: Market, rows: Sequence[UsRow | HkRow]) -> None:
        self.market = market
        self.rows: list[UsRow | HkRow] = list(rows)
        # Negated so bisect (ascending) can search the newest-first timestamps.
        self._descending = [-(r.timestamp if r.timestamp is not None else 0) for r in self.rows]

    def start_after(self, next_key: str) -> int | None:
        """Index of the first row after the page that ``next_key`` ended; None if it is invalid.

        A key is a timestamp or ``@`` and a row position: ASCII digits only, at most 19 of
        them (what an int64 holds), no sign and no underscores.
        """
        match = _NEXT_KEY.fullmatch(next_key)
        if match is None:
            return None
        position, digits = match.groups()
        if position:
            return min(int(digits), len(self.rows))
        return bisect.bisect_right(self._descending, -int(digits))

    def key_after(self, end: int) -> str:
        """The ``nextKey`` of a page that ends just before row ``end``."""
        if end >= len(self.rows):
            return "-1"
        # Like OpenD, the key is the page's last timestamp. Hand-made histories may repeat
        # timestamps, leave them out or not be sorted; where the timestamp would not lead back to
        # exactly this row, page by position instead.
        last = self.rows[end - 1].timestamp
        if last is None or self.start_after(str(last)) != end:
            return f"@{end}"
        return str(last)


class Universe:
    """The codes the simulator serves: generated from profiles, or rows given by the user.

    ``seed`` and ``as_of`` fix the generated histories; they are generated when first asked for.
    ``publication_lag`` holds a generated row back until ``as_of`` reaches its date plus its
    market's lag in business days (see `aiomoomoo.testing._publication`); rows given as they
    are (``add_symbol(rows=...)``) are served as given.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        as_of: dt.date = DEFAULT_AS_OF,
        publication_lag: Mapping[str, int] | None = None,
    ) -> None:
        self.seed = seed
        self.as_of = as_of
        self.publication_lag = check_publication_lag(publication_lag)
        self._profiles: dict[str, SymbolProfile] = dict(BUILTIN_PROFILES)
        self._histories: dict[str, SymbolHistory] = {}

    @property
    def codes(self) -> list[str]:
        """Every code served."""
        return sorted(set(self._profiles) | set(self._histories))

    def add_symbol(
        self,
        code: str,
        profile: SymbolProfile | None = None,
        *,
        rows: Sequence[UsRow] | Sequence[HkRow] | None = None,
    ) -> None:
        """Serve ``code``: a history generated from ``profile``, or exactly ``rows``."""
        security = parse_code(code)
        if (profile is None) == (rows is None):
            raise ValueError("add_symbol needs exactly one of profile= or rows=")
        if rows is not None:
            row_type = UsRow if security.market is Market.US else HkRow
            if not all(isinstance(r, row_type) for r in rows):
                raise TypeError(f"rows for {code!r} must all be {row_type.__name__}")
            self._profiles.pop(security.code, None)
            self._histories[security.code] = SymbolHistory(security.market, rows)
        else:
            assert profile is not None
            self._profiles[security.code] = profile
            self._histories.pop(security.code, None)

    def generated(self) -> list[str]:
        """The codes whose histories are generated from a profile, not given as rows."""
        return sorted(self._profiles)

    def advance(self, days: int, *, revise: bool = False) -> dict[str, int]:
        """Move ``as_of`` forward ``days`` days, publishing the generated rows that fall due.

        Return how many rows each generated code gained. With ``revise``, each generated code's
        newest row from before the move is revised first, as FINRA revises a settlement date.
        """
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"days must be an int, got {days!r}")
        if days < 0:
            raise ValueError(f"days must be 0 or more (the clock only moves forward), got {days}")
        old, new = self.as_of, self.as_of + dt.timedelta(days=days)
        published: dict[str, int] = {}
        for code in self.generated():
            history = self.get(code)
            if revise and history.rows:
                self._histories[code] = history = _revised(history, self.seed, code, old)
            rows = self._published(code, new)
            # Public by the new as_of and not by the old one.
            fresh = [r for r in rows if self._public_on(history.market, r) > old]
            if fresh:
                self._histories[code] = SymbolHistory(history.market, [*fresh, *history.rows])
            published[code] = len(fresh)
        self.as_of = new
        return published

    def revise(self, code: str, date: dt.date, **fields: object) -> None:
        """Change the fields of ``code``'s row of ``date``, as a publisher's revision would."""
        history = self.get(code)
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            raise TypeError(f"date must be a datetime.date, got {date!r}")
        names = {f.name for f in dataclasses.fields(history.rows[0] if history.rows else UsRow)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f"{code} rows have no field {', '.join(unknown)}: they have {names}")
        for index, row in enumerate(history.rows):
            if row.timestamp_str == date.isoformat():
                rows = list(history.rows)
                rows[index] = dataclasses.replace(row, **fields)  # type: ignore[arg-type]
                self._histories[code] = SymbolHistory(history.market, rows)
                return
        raise KeyError(f"{code} has no row dated {date.isoformat()}")

    def get(self, code: str) -> SymbolHistory:
        """``code``'s history (a normalised code such as ``"US.AAPL"``); KeyError if not served."""
        history = self._histories.get(code)
        if history is None:
            rows = self._published(code, self.as_of)
            history = self._histories[code] = SymbolHistory(parse_code(code).market, rows)
        return history

    def _published(self, code: str, as_of: dt.date) -> list[UsRow] | list[HkRow]:
        """``code``'s generated rows that are public by ``as_of``, newest first."""
        rows = generate_history(code, self._profiles[code], seed=self.seed, as_of=as_of)
        market = parse_code(code).market
        if not self.publication_lag[market]:
            return rows
        return [r for r in rows if self._public_on(market, r) <= as_of]  # type: ignore[return-value]

    def _public_on(self, market: Market, row: UsRow | HkRow) -> dt.date:
        date = dt.date.fromisoformat(str(row.timestamp_str))
        return published_on(date, self.publication_lag[market])


def _revised(history: SymbolHistory, seed: int, code: str, as_of: dt.date) -> SymbolHistory:
    """``history`` with its newest row's short position revised by a seeded few percent."""
    row = history.rows[0]
    digest = hashlib.sha256(f"{seed}:{code}:revision:{as_of}".encode()).digest()
    rng = random.Random(digest)
    factor = 1 + rng.choice((-1, 1)) * rng.uniform(0.005, 0.04)
    if isinstance(row, UsRow) and row.shares_short is not None:
        shares = max(1, round(row.shares_short * factor))
        if shares == row.shares_short:
            shares += 1
        ratio = shares / row.shares_short
        row = dataclasses.replace(
            row,
            shares_short=shares,
            short_percent=_scaled(row.short_percent, ratio),
            days_to_cover=(
                round(max(shares / row.avg_daily_share_volume, 1.0), 2)
                if row.avg_daily_share_volume
                else row.days_to_cover
            ),
        )
    elif isinstance(row, HkRow) and row.aggregated_short is not None:
        shares = max(1, round(row.aggregated_short * factor))
        if shares == row.aggregated_short:
            shares += 1
        ratio = shares / row.aggregated_short
        row = dataclasses.replace(
            row,
            aggregated_short=shares,
            aggregated_short_ratio=_scaled(row.aggregated_short_ratio, ratio),
        )
    return SymbolHistory(history.market, [row, *history.rows[1:]])


def _scaled(value: float | None, ratio: float) -> float | None:
    return None if value is None or ratio <= 0 else round(value * ratio, 2)


def _us_fields(row: UsRow) -> tuple[tuple[str, object], ...]:
    return (
        ("timestamp", row.timestamp),
        ("timestampStr", row.timestamp_str),
        ("sharesShort", row.shares_short),
        ("shortPercent", row.short_percent),
        ("avgDailyShareVolume", row.avg_daily_share_volume),
        ("daysToCover", row.days_to_cover),
        ("closePrice", row.close_price),
        ("lastClosePrice", row.last_close_price),
    )


def _hk_fields(row: HkRow) -> tuple[tuple[str, object], ...]:
    return (
        ("timestamp", row.timestamp),
        ("timestampStr", row.timestamp_str),
        ("closePrice", row.close_price),
        ("lastClosePrice", row.last_close_price),
        ("aggregatedShort", row.aggregated_short),
        ("aggregatedShortRatio", row.aggregated_short_ratio),
    )


_PB_FIELDS: Final[dict[type, Callable[..., tuple[tuple[str, object], ...]]]] = {
    UsRow: _us_fields,
    HkRow: _hk_fields,
}


def write_row(item: Message, row: UsRow | HkRow) -> None:
    """Fill a ``UsShortInterestItem`` / ``HkShortInterestItem`` from ``row``; None stays absent."""
    for name, value in _PB_FIELDS[type(row)](row):
        if value is not None:
            setattr(item, name, value)
