"""Checks for the arguments of the public calls, raised before anything is sent.

Each names the bad value and what is allowed; bool is refused where an int is wanted, since
``True`` would otherwise pass as 1.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final

__all__ = [
    "END_OF_DATA",
    "MAX_NUM",
    "MIN_NUM",
    "check_int",
    "check_next_key",
    "check_num",
    "check_seconds",
    "check_since",
    "check_timeout",
]

END_OF_DATA: Final = "-1"
"""The reply's ``next_key`` when there are no more pages."""
MIN_NUM: Final = 1
"""Fewest rows a page may ask for."""
MAX_NUM: Final = 50
"""Most rows a page may ask for."""


def check_num(num: object) -> int | None:
    if num is None:
        return None
    if isinstance(num, bool) or not isinstance(num, int):
        raise TypeError(f"num must be an int from {MIN_NUM} to {MAX_NUM} or None, got {num!r}")
    if not MIN_NUM <= num <= MAX_NUM:
        raise ValueError(f"num must be from {MIN_NUM} to {MAX_NUM}, got {num!r}")
    return num


def check_next_key(next_key: object) -> str | None:
    if next_key is None:
        return None
    if not isinstance(next_key, str):
        raise TypeError(f"next_key must be a str from a previous page or None, got {next_key!r}")
    if next_key == END_OF_DATA:
        raise ValueError("next_key '-1' marks the last page: there is nothing after it")
    if not next_key:
        raise ValueError("next_key '' is not a page key; pass None for the first page")
    return next_key


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def check_seconds(seconds: object, name: str) -> float:
    """A finite number of seconds, zero or more."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {seconds!r}")
    if not 0 <= seconds < math.inf:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {seconds!r}")
    return float(seconds)


def check_int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    """An int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_since(since: object) -> dt.date | None:
    if since is None:
        return None
    if isinstance(since, dt.datetime):
        return since.date()
    if isinstance(since, dt.date):
        return since
    if isinstance(since, str):
        try:
            return dt.date.fromisoformat(since)
        except ValueError:
            raise ValueError(f"since {since!r} is not a date in YYYY-MM-DD form") from None
    raise TypeError(f"since must be a datetime.date or a 'YYYY-MM-DD' str, got {since!r}")
