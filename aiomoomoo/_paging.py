"""Paging through short-interest history: the page object and the walk over a fetch function.

The walk knows nothing of connections: it takes a ``fetch(security, next_key, num)`` coroutine
and follows ``next_key`` (or where its caller says to continue) until OpenD says ``"-1"``,
refusing a key it has seen before or a page no older than the one before (a gateway that loops
would otherwise keep a walk going for ever).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import pandas as pd

from ._errors import ProtocolError
from ._frames import HistoryColumns, rows_to_frame
from ._options import END_OF_DATA
from ._rows import Rows, ShortInterestReply
from ._security import Market, Security

__all__ = ["ContinueAt", "FetchPage", "ShortInterestPage", "collect", "walk"]


class ShortInterestPage:
    """One page of short-interest history, newest row first.

    ``us`` and ``hk`` are the official SDK's two DataFrames (the one for the other market is
    empty); ``frame`` is the one for the code's market. ``next_key`` is the key of the next page,
    ``"-1"`` when this is the last. Frames are built when first read, so a page you only page
    through costs no DataFrame.
    """

    __slots__ = ("_frames", "_rows", "next_key", "security")

    def __init__(self, security: Security, next_key: str, us: Rows, hk: Rows) -> None:
        self.security = security
        """The parsed code: its `Market` and symbol."""
        self.next_key = next_key
        """The key of the next page, for `get_short_interest`; ``"-1"`` on the last page."""
        self._rows = {Market.US: us, Market.HK: hk}
        self._frames: dict[Market, pd.DataFrame] = {}

    @classmethod
    def from_reply(
        cls, security: Security, reply: ShortInterestReply, *, asked: str | None = None
    ) -> ShortInterestPage:
        """The page a successful 3249 reply holds; without ``nextKey`` it is the last page.

        ``asked`` is the ``next_key`` the page was requested with, for the error: a row whose
        date cannot be right (see `Rows.fault`) refuses the whole page with `ProtocolError`,
        so no caller, and no store, ever holds it.
        """
        for rows in (reply.us, reply.hk):
            fault = rows.fault()
            if fault is not None:
                at, what = fault
                raise ProtocolError(
                    f"OpenD sent {security.code} a {rows.market.name} row {what} "
                    f"(row {at} of the page asked for with next_key {asked!r}); the page is "
                    "refused"
                )
        # As the official SDK: a reply without nextKey is the last page.
        next_key = END_OF_DATA if reply.next_key is None else reply.next_key
        return cls(security, next_key, reply.us, reply.hk)

    def __repr__(self) -> str:
        return f"<ShortInterestPage {self.code} rows={len(self)} next_key={self.next_key!r}>"

    def __len__(self) -> int:
        return self._rows[Market.US].count + self._rows[Market.HK].count

    @property
    def code(self) -> str:
        """The security code the page belongs to, ``"US.AAPL"``."""
        return self.security.code

    @property
    def market(self) -> Market:
        """The code's market."""
        return self.security.market

    @property
    def has_more(self) -> bool:
        """Whether another page follows this one."""
        return self.next_key != END_OF_DATA

    @property
    def us(self) -> pd.DataFrame:
        """US rows, in the official column order (empty for an HK code)."""
        return self._frame_of(Market.US)

    @property
    def hk(self) -> pd.DataFrame:
        """HK rows, in the official column order (empty for a US code)."""
        return self._frame_of(Market.HK)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows of the code's own market: ``us`` for a US code, ``hk`` for an HK one."""
        return self._frame_of(self.security.market)

    def _frame_of(self, market: Market) -> pd.DataFrame:
        frame = self._frames.get(market)
        if frame is None:
            frame = self._frames[market] = rows_to_frame(self._rows[market])
            frame.attrs["next_key"] = self.next_key
        return frame

    def records(self) -> list[tuple[Any, ...]]:
        """The rows of the code's own market as plain tuples, newest first.

        Each tuple holds the row's values in `columns_for` order of the code's market
        (``timestamp``, ``timestamp_str``, ...), None where OpenD left a field out.
        """
        return self._rows[self.security.market].records()


FetchPage = Callable[[Security, str | None, int | None], Awaitable[ShortInterestPage]]
"""Fetch one page: ``(security, next_key, num)``, arguments already checked."""


ContinueAt = Callable[[ShortInterestPage], str]
"""Where a walk goes after a page: the key to fetch next, ``"-1"`` to stop."""


async def walk(
    fetch: FetchPage,
    security: Security,
    *,
    num: int | None,
    next_key: str | None = None,
    since: dt.date | None = None,
    continue_at: ContinueAt | None = None,
) -> AsyncGenerator[ShortInterestPage, None]:
    """Yield ``security``'s pages newest first from ``next_key`` (None: the start).

    Stops after the last page, or after the first page that reaches rows older than ``since``.
    ``continue_at``, called with each page once it has been consumed, says where the walk goes
    next (the key to fetch, ``"-1"`` to stop); without it the walk follows the page's own
    ``next_key``. A walk that would go round in circles ends with `ProtocolError`: a key it has
    already fetched, or a page whose dated rows are not all older than every dated row before.
    """
    seen: set[str] = set()
    oldest: str | None = None  # the oldest date text of the pages so far
    key = next_key
    while True:
        page = await fetch(security, key, num)
        span = page._rows[security.market].date_span()
        if span is not None:
            low, high = span
            if oldest is not None and high >= oldest:
                raise ProtocolError(
                    f"OpenD sent {security.code} rows dated {low} to {high} after rows dated "
                    f"down to {oldest} (next_key {key!r}): the walk makes no progress, so it "
                    "stops instead of going on for ever"
                )
            oldest = low if oldest is None else min(oldest, low)
        yield page
        if since is not None and oldest is not None and oldest < since.isoformat():
            return
        key = page.next_key if continue_at is None else continue_at(page)
        if key == END_OF_DATA:
            return
        if not key or key in seen:
            raise ProtocolError(
                f"OpenD returned next_key {key!r} for {security.code} again; "
                "stopping instead of looping for ever"
            )
        seen.add(key)


async def collect(
    pages: AsyncIterator[ShortInterestPage],
    security: Security,
    *,
    since: dt.date | None,
    on_page: Callable[[ShortInterestPage], None] | None = None,
) -> pd.DataFrame:
    """Gather a walk's ``pages`` into one frame, without rows older than ``since``."""
    # Each page's values go into the columns as it arrives, so its rows are freed at once.
    columns = HistoryColumns(security.market)
    async for page in pages:
        columns.add(page._rows[security.market])
        if on_page is not None:
            on_page(page)
    frame = columns.frame(since)
    frame.attrs["next_key"] = END_OF_DATA
    return frame
