"""Deterministic, plausible short-interest histories for the simulator.

US rows fall on FINRA's twice-monthly settlement dates (the 15th and the month's last business
day), HK rows on the SFC's weekly reporting day (Friday, or the business day before it when
Friday is a holiday). Prices follow a seeded random walk; short positions mean-revert around a
per-symbol level. The same seed always gives the same bytes.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from .._security import Market, Security, parse_code

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_AS_OF",
    "DEFAULT_START",
    "HkRow",
    "SymbolProfile",
    "UsRow",
    "generate_history",
]

#: The newest day the built-in histories reach: the seed documents' latest HK row.
DEFAULT_AS_OF: Final = dt.date(2026, 4, 30)
# Per reporting step, the share of the log distance to the profile's price that is closed.
_PRICE_PULL: Final = 0.03
#: The oldest day of the built-in histories.
DEFAULT_START: Final = dt.date(2019, 1, 1)
# Generated walks start here, whatever their as_of, so moving as_of never rewrites a row.
_ANCHOR: Final = DEFAULT_AS_OF


@dataclass(frozen=True, slots=True)
class UsRow:
    """One US short-interest row; ``None`` marks a field OpenD left out."""

    timestamp: int | None
    timestamp_str: str | None
    shares_short: int | None
    short_percent: float | None
    avg_daily_share_volume: int | None
    days_to_cover: float | None
    close_price: float | None
    last_close_price: float | None


@dataclass(frozen=True, slots=True)
class HkRow:
    """One HK short-interest row; ``None`` marks a field OpenD left out."""

    timestamp: int | None
    timestamp_str: str | None
    close_price: float | None
    last_close_price: float | None
    aggregated_short: int | None
    aggregated_short_ratio: float | None


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """What makes one symbol's generated history look like that symbol.

    ``price`` is the latest close, ``shares`` the shares outstanding (float), ``short_percent``
    the typical short position as a percent of them, ``daily_volume`` the typical traded shares
    a day and ``volatility`` the annualised price volatility.
    """

    price: float
    shares: float
    short_percent: float
    daily_volume: float
    volatility: float = 0.3


BUILTIN_PROFILES: Final[dict[str, SymbolProfile]] = {
    "US.AAPL": SymbolProfile(
        price=271.0, shares=14.8e9, short_percent=0.75, daily_volume=52e6, volatility=0.28
    ),
    "US.TSLA": SymbolProfile(
        price=292.0, shares=2.8e9, short_percent=2.9, daily_volume=98e6, volatility=0.60
    ),
    "US.NVDA": SymbolProfile(
        price=108.0, shares=23.6e9, short_percent=1.05, daily_volume=240e6, volatility=0.50
    ),
    "US.SPY": SymbolProfile(
        price=552.0, shares=0.91e9, short_percent=2.6, daily_volume=72e6, volatility=0.17
    ),
    "US.BRK.B": SymbolProfile(
        price=523.0, shares=1.3e9, short_percent=0.95, daily_volume=4.6e6, volatility=0.18
    ),
    "US.MSFT": SymbolProfile(
        price=395.0, shares=7.43e9, short_percent=0.7, daily_volume=21e6, volatility=0.25
    ),
    "HK.00700": SymbolProfile(
        price=467.8, shares=9.2e9, short_percent=0.55, daily_volume=19e6, volatility=0.32
    ),
    "HK.09988": SymbolProfile(
        price=121.4, shares=19.1e9, short_percent=1.4, daily_volume=95e6, volatility=0.42
    ),
    "HK.00005": SymbolProfile(
        price=96.35, shares=17.9e9, short_percent=0.35, daily_volume=24e6, volatility=0.2
    ),
    "HK.02800": SymbolProfile(
        price=23.46, shares=4.6e9, short_percent=2.2, daily_volume=150e6, volatility=0.2
    ),
    "HK.03690": SymbolProfile(
        price=131.2, shares=6.1e9, short_percent=1.9, daily_volume=22e6, volatility=0.5
    ),
}


def _easter(year: int) -> dt.date:
    # Anonymous Gregorian computus.
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _is_holiday(day: dt.date, market: Market) -> bool:
    # The few fixed and Easter holidays both markets keep are enough to move reporting days the
    # way real ones move; a full exchange calendar would add nothing for a simulator.
    if day.weekday() >= 5 or (day.month, day.day) in {(1, 1), (12, 25)}:
        return True
    if market is Market.US:
        return (day.month, day.day) == (7, 4) or day == _easter(day.year) - dt.timedelta(days=2)
    easter = _easter(day.year)
    return (day.month, day.day) in {(5, 1), (7, 1), (10, 1)} or day in {
        easter - dt.timedelta(days=2),
        easter + dt.timedelta(days=1),
    }


def _business_day_on_or_before(day: dt.date, market: Market) -> dt.date:
    while _is_holiday(day, market):
        day -= dt.timedelta(days=1)
    return day


def _report_days(market: Market, start: dt.date, as_of: dt.date) -> Iterator[dt.date]:
    """Reporting days from ``as_of`` back to ``start``, newest first."""
    if market is Market.US:
        year, month = as_of.year, as_of.month
        while (year, month) >= (start.year, start.month):
            last = dt.date(year, month, calendar.monthrange(year, month)[1])
            for day in (last, dt.date(year, month, 15)):
                day = _business_day_on_or_before(day, market)
                if start <= day <= as_of:
                    yield day
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    else:
        friday = as_of + dt.timedelta(days=(4 - as_of.weekday()) % 7)
        while friday >= start:
            day = _business_day_on_or_before(friday, market)
            if start <= day <= as_of:
                yield day
            friday -= dt.timedelta(days=7)


def _midnight(day: dt.date, market: Market) -> int:
    return int(dt.datetime.combine(day, dt.time(), ZoneInfo(market.timezone)).timestamp())


def _round_price(price: float, market: Market) -> float:
    if market is Market.US or price < 10:
        return round(price, 2 if price >= 1 else 3)
    return round(price, 1 if price >= 100 else 2)


def _rng(seed: int, code: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{code}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _row(
    market: Market,
    day: dt.date,
    price: float,
    short_pct: float,
    profile: SymbolProfile,
    rng: random.Random,
) -> UsRow | HkRow:
    """The row of one reporting day, for a close of ``price`` and a short position of
    ``short_pct`` percent; draws the day's other randomness from ``rng``."""
    timestamp = _midnight(day, market)
    close = _round_price(price, market)
    daily_sigma = profile.volatility / math.sqrt(252)
    last_close = _round_price(price / math.exp(rng.gauss(0.0, daily_sigma)), market)
    if market is Market.US:
        volume = profile.daily_volume * math.exp(rng.gauss(0.0, 0.25))
        shares_short = int(profile.shares * short_pct / 100)
        return UsRow(
            timestamp=timestamp,
            timestamp_str=day.isoformat(),
            shares_short=shares_short,
            short_percent=round(short_pct, 2),
            avg_daily_share_volume=int(volume),
            days_to_cover=round(max(shares_short / volume, 1.0), 2),
            close_price=close,
            last_close_price=last_close,
        )
    aggregated = int(profile.shares * short_pct / 100)
    return HkRow(
        timestamp=timestamp,
        timestamp_str=day.isoformat(),
        close_price=close,
        last_close_price=last_close,
        aggregated_short=aggregated,
        aggregated_short_ratio=round(aggregated / profile.shares * 100, 2),
    )


def _next_short_pct(short_pct: float, level: float, rng: random.Random) -> float:
    return max(0.01, short_pct + 0.15 * (level - short_pct) + rng.gauss(0.0, 0.08 * level))


def generate_history(
    code: str,
    profile: SymbolProfile,
    *,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    as_of: dt.date = DEFAULT_AS_OF,
) -> list[UsRow] | list[HkRow]:
    """Generate ``code``'s history from ``start`` to ``as_of``, newest row first.

    Every reporting day's row depends only on the code, the profile, the seed and the day, never
    on ``start`` or ``as_of``: a later ``as_of`` adds rows and changes none. The walk is
    anchored at `DEFAULT_AS_OF`, whose row shows the profile's price; it runs backwards from
    there for older days and forwards, with its own random stream, for newer ones.
    """
    security: Security = parse_code(code)
    market = security.market
    step_years = (1 / 24) if market is Market.US else (1 / 52)
    sigma = profile.volatility * math.sqrt(step_years)
    level = profile.short_percent
    rows: list[UsRow | HkRow] = []

    if as_of > _ANCHOR:
        # Forwards from the anchor's state, oldest first, then reversed to newest first.
        rng = _rng(seed, f"{security.code}/after")
        price, short_pct = profile.price, level
        days = list(_report_days(market, _ANCHOR + dt.timedelta(days=1), as_of))[::-1]
        for day in days:
            pull = _PRICE_PULL * math.log(profile.price / price)
            price *= math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2 + pull)
            short_pct = _next_short_pct(short_pct, level, rng)
            rows.append(_row(market, day, price, short_pct, profile, rng))
        rows.reverse()

    # Backwards from the anchor, so the anchor's row shows the profile's price.
    rng = _rng(seed, security.code)
    price, short_pct = profile.price, level
    for day in _report_days(market, start, _ANCHOR):
        row = _row(market, day, price, short_pct, profile, rng)
        if day <= as_of:
            rows.append(row)
        # A pull back towards the profile's price keeps years of random walk in a believable
        # band for the stock (a pure walk drifts to prices the stock never saw).
        pull = _PRICE_PULL * math.log(profile.price / price)
        price /= math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2 - pull)
        short_pct = _next_short_pct(short_pct, level, rng)
    return rows  # type: ignore[return-value]
