"""When a row becomes public: a market's publication lag, in business days after its date.

OpenD serves a short-interest row once the regulator has published it, some days after the date
the row is for: FINRA publishes US short interest about seven business days after each
settlement date, and the SFC publishes Hong Kong's weekly short positions a week (five business
days) after the reference Friday. The simulator holds a row back until its ``as_of`` reaches the
row's date plus its market's lag. Business days here are Monday to Friday; neither market's
holidays are modelled, so a lag across a holiday ends a day or so earlier than the real one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from .._security import Market

__all__ = ["NO_PUBLICATION_LAG", "PUBLICATION_LAGS", "check_publication_lag", "published_on"]

#: The real schedules: US 7 business days after the settlement date, HK 5 (one week).
PUBLICATION_LAGS: Final[Mapping[str, int]] = {"US": 7, "HK": 5}
#: Every row public on its own date: what the simulator does unless told otherwise.
NO_PUBLICATION_LAG: Final[Mapping[str, int]] = {"US": 0, "HK": 0}


def check_publication_lag(lag: object) -> dict[Market, int]:
    """``lag`` (None, or business days by market name: ``{"US": 7, "HK": 5}``) per `Market`;
    a market left out has no lag."""
    if lag is None:
        return dict.fromkeys(Market, 0)
    if not isinstance(lag, Mapping):
        raise TypeError(
            f"publication_lag must map markets to business days, e.g. {{'US': 7, 'HK': 5}}, "
            f"got {lag!r}"
        )
    lags = dict.fromkeys(Market, 0)
    for key, days in lag.items():
        market = key if isinstance(key, Market) else Market.__members__.get(str(key).upper())
        if market is None:
            names = ", ".join(repr(m.name) for m in Market)
            raise ValueError(f"publication_lag has an unknown market {key!r}; markets: {names}")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 60:
            raise ValueError(
                f"publication_lag[{key!r}] must be whole business days from 0 to 60, got {days!r}"
            )
        lags[market] = days
    return lags


def published_on(date: dt.date, lag: int) -> dt.date:
    """The day a row dated ``date`` is public: ``lag`` business days (Mon-Fri) after it."""
    day = date
    left = lag
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day
