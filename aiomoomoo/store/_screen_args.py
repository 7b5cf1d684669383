"""A screen's arguments checked before any query: bounds that are numbers and apply to the
markets asked for, a sort column the screen has, a row count of at least one."""

from __future__ import annotations

from dataclasses import dataclass

from .._security import Market
from ._read import CONDITIONS, GENERIC_ORDER, StoreReader

__all__ = ["Screen", "check_screen"]


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
