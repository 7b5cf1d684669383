"""The store's arguments, checked before any query: a moment (``as_of``), a day (``since``), a
market, and a screen's (bounds that are numbers and apply to the markets asked for, a sort
column the screen has, a row count of at least one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .._security import Market
from ._read import CONDITIONS, GENERIC_ORDER, StoreReader
from ._write import utc_micros

__all__ = ["Screen", "check_as_of", "check_market", "check_screen", "check_since"]


def check_as_of(as_of: object) -> int | None:
    """``as_of`` (an aware datetime or ISO text) as the file keeps moments: microseconds."""
    if as_of is None:
        return None
    if isinstance(as_of, str):
        try:
            as_of = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"as_of {as_of!r} is not an ISO date-time") from None
    if not isinstance(as_of, dt.datetime):
        raise TypeError(f"as_of must be a timezone-aware datetime or ISO str, got {as_of!r}")
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of!r} has no timezone; give one (the store keeps UTC)")
    return utc_micros(as_of)


def check_since(since: object) -> str | None:
    """``since`` (a date, a datetime or ``YYYY-MM-DD`` text) as ``YYYY-MM-DD`` text."""
    if since is None:
        return None
    if isinstance(since, dt.datetime):
        since = since.date()
    if isinstance(since, dt.date):
        return since.isoformat()
    if isinstance(since, str):
        try:
            return dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise ValueError(f"since {since!r} is not a date in YYYY-MM-DD form") from None
    raise TypeError(f"since must be a datetime.date or a 'YYYY-MM-DD' str, got {since!r}")


def check_market(market: object) -> Market:
    """``market`` (a `Market` or its name, any case) as a `Market`."""
    if isinstance(market, Market):
        return market
    if isinstance(market, str) and market.upper() in Market.__members__:
        return Market[market.upper()]
    raise ValueError(f"market must be Market.US, Market.HK, 'US' or 'HK', got {market!r}")


@dataclass(frozen=True, slots=True)
class Screen:
    """What `StoreReader.screen` runs: ``conditions`` as (what, ``">="``/``"<="``, bound)."""

    conditions: list[tuple[str, str, float]]
    by: str | None
    ascending: bool
    top: int | None


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not -float("inf") < value < float("inf"):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _top(top: object) -> int | None:
    if top is None:
        return None
    if isinstance(top, bool) or not isinstance(top, int):
        raise TypeError(f"top must be a whole number or None, got {top!r}")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top!r}")
    return top


def check_screen(
    markets: list[Market],
    *,
    one_market: bool,
    bounds: dict[str, float | None],
    by: object,
    ascending: object,
    top: object,
) -> Screen:
    """Check `ShortInterestStore.screen`'s arguments for ``markets`` (``one_market``: the
    caller named a market); ``bounds`` maps each ``min_``/``max_`` keyword to its value."""
    conditions = []
    for name, value in bounds.items():
        if value is None:
            continue
        what = name.removeprefix("min_").removeprefix("max_")
        number = _number(value, name)
        for market in markets:
            if what not in CONDITIONS[market]:
                scope = "" if one_market else "; pass market='US' to screen US codes"
                raise ValueError(
                    f"{name} does not apply to {market.name} codes: OpenD gives HK short "
                    f"interest no days to cover{scope}"
                )
        conditions.append((what, ">=" if name.startswith("min_") else "<=", number))
    if by is not None:
        allowed = [*StoreReader.columns(markets), *GENERIC_ORDER]
        if by not in allowed:
            raise ValueError(f"by must be one of {', '.join(allowed)}; got {by!r}")
    if not isinstance(ascending, bool):
        raise TypeError(f"ascending must be a bool, got {ascending!r}")
    return Screen(conditions, by if isinstance(by, str) else None, ascending, _top(top))
