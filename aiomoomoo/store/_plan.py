"""What a sync will ask for: which codes are due, and how many requests that should take.

`SyncPlan` is what ``aiomoomoo sync --dry-run`` prints and what a sync then does: the codes it
requests and the codes it skips as not due (see `next_due`), with the requests expected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .._options import MAX_NUM
from .._security import Market, Security

__all__ = ["GUESSED_PAGES", "StoredCode", "SyncPlan", "expected_requests"]

#: Pages a history of a code never synced is guessed to take, by market, until the store holds
#: complete histories of that market to learn the typical length from.
GUESSED_PAGES: Final = {Market.US: 4, Market.HK: 8}


@dataclass(frozen=True, slots=True)
class StoredCode:
    """What the store holds of one code: its row count and whether its history is complete."""

    market: Market
    rows: int
    complete: bool


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync of some codes would do now.

    ``due`` are the codes it requests (in the order given), ``skipped`` those not due yet;
    ``requests`` is the number of requests expected, of which the histories of ``unknown``
    codes (never synced) are guessed from the store's complete histories of their market.
    """

    due: tuple[str, ...]
    skipped: tuple[str, ...]
    requests: int
    unknown: int


def expected_requests(
    due: Iterable[Security], stored: Mapping[str, StoredCode], *, full: bool
) -> tuple[int, int]:
    """(requests expected for the ``due`` codes, how many of them were never synced)."""
    pages = dict(GUESSED_PAGES)
    for market in Market:
        known = [
            math.ceil(s.rows / MAX_NUM)
            for s in stored.values()
            if s.complete and s.market is market
        ]
        if known:
            pages[market] = max(1, round(sum(known) / len(known)))
    expected = unknown = 0
    for security in due:
        state = stored.get(security.code)
        if state is None:
            expected += pages[security.market]
            unknown += 1
        elif full:
            expected += max(1, math.ceil(state.rows / MAX_NUM))
        else:
            expected += 1 if state.complete else pages[security.market]
    return expected, unknown
