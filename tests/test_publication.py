"""The publication schedule, without a socket: business-day lags and what they accept."""

from __future__ import annotations

import datetime as dt

import pytest

from aiomoomoo import Market
from aiomoomoo.testing import NO_PUBLICATION_LAG, PUBLICATION_LAGS
from aiomoomoo.testing._publication import check_publication_lag, published_on


@pytest.mark.parametrize(
    ("date", "lag", "public"),
    [
        (dt.date(2026, 1, 15), 0, dt.date(2026, 1, 15)),
        # A Thursday settlement date: seven weekdays on is the Monday after next (Nasdaq
        # published on the 27th, a day later, for the Martin Luther King holiday).
        (dt.date(2026, 1, 15), 7, dt.date(2026, 1, 26)),
        (dt.date(2026, 2, 27), 7, dt.date(2026, 3, 10)),  # Friday: as Nasdaq's release
        (dt.date(2026, 4, 24), 5, dt.date(2026, 5, 1)),  # an HK Friday: the next Friday
        (dt.date(2026, 5, 31), 1, dt.date(2026, 6, 1)),  # a Sunday: the Monday after
        (dt.date(2026, 5, 30), 2, dt.date(2026, 6, 2)),  # a Saturday
    ],
)
def test_a_row_is_public_its_lag_in_weekdays_after_its_date(
    date: dt.date, lag: int, public: dt.date
) -> None:
    assert published_on(date, lag) == public


def test_the_lags_by_market() -> None:
    assert check_publication_lag(None) == {Market.US: 0, Market.HK: 0}
    assert check_publication_lag(PUBLICATION_LAGS) == {Market.US: 7, Market.HK: 5}
    assert check_publication_lag(NO_PUBLICATION_LAG) == {Market.US: 0, Market.HK: 0}
    assert check_publication_lag({"us": 3}) == {Market.US: 3, Market.HK: 0}
    assert check_publication_lag({Market.HK: 2}) == {Market.US: 0, Market.HK: 2}


@pytest.mark.parametrize(
    ("lag", "error", "match"),
    [
        ([("US", 7)], TypeError, r"publication_lag must map markets to business days"),
        ({"JP": 1}, ValueError, r"unknown market 'JP'; markets: 'HK', 'US'"),
        ({"US": -1}, ValueError, r"publication_lag\['US'\] must be whole business days"),
        ({"US": 1.5}, ValueError, r"from 0 to 60, got 1\.5"),
        ({"HK": True}, ValueError, r"got True"),
        ({"HK": 61}, ValueError, r"got 61"),
    ],
)
def test_a_lag_that_is_no_schedule_is_refused(
    lag: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check_publication_lag(lag)
