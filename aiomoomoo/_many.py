"""Many symbols at once: concurrent history walks over one client, one quota.

Each symbol's walk runs in its own task, at most ``concurrency`` at a time; every request still
goes through the client's quota, so the walks share OpenD's budget fairly (first come, first
served). A symbol that fails is reported with its error; the other symbols' data is kept. The
walks are given as a `FetchHistory` callable, so this module needs no client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd

from ._errors import FetchManyError, MoomooError
from ._frames import empty_frame
from ._options import check_codes, check_concurrency, check_num, check_since
from ._paging import ShortInterestPage
from ._security import Market, Security

__all__ = ["FetchHistory", "Progress", "SymbolResult", "fetch_many", "iter_many"]


class FetchHistory(Protocol):
    """Walk one security's whole history into a frame (arguments already checked)."""

    def __call__(
        self,
        security: Security,
        *,
        num: int | None,
        since: dt.date | None,
        on_page: Callable[[ShortInterestPage], None] | None,
    ) -> Awaitable[pd.DataFrame]: ...


@dataclass(frozen=True, slots=True)
class SymbolResult:
    """One symbol's outcome: its whole history in ``frame``, or the ``error`` that stopped it.

    ``frame`` holds the code's market columns (empty, with the same dtypes, when it failed).
    """

    code: str
    frame: pd.DataFrame
    pages: int
    error: MoomooError | None = None

    @property
    def ok(self) -> bool:
        """Whether the symbol's history arrived in full."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report: ``event`` is ``"page"`` after each page, ``"done"`` or ``"failed"`` at
    the end of a symbol; the counts are the totals so far over all symbols.
    """

    event: Literal["page", "done", "failed"]
    code: str
    pages: int
    rows: int
    symbols_done: int
    symbols_total: int


async def iter_many(
    fetch_history: FetchHistory,
    codes: Iterable[str],
    *,
    since: dt.date | str | None = None,
    num: int = 50,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
) -> AsyncGenerator[SymbolResult, None]:
    """Walk every code's history concurrently; yield each `SymbolResult` as it completes."""
    securities = check_codes(codes)
    cutoff = check_since(since)
    num = check_num(num) or 50
    limit = asyncio.Semaphore(check_concurrency(concurrency))
    total = len(securities)
    counts = {"pages": 0, "rows": 0, "done": 0}

    def report(event: Literal["page", "done", "failed"], code: str) -> None:
        if on_progress is not None:
            on_progress(
                Progress(event, code, counts["pages"], counts["rows"], counts["done"], total)
            )

    async def walk(security: Security) -> SymbolResult:
        async with limit:
            pages = 0
            try:

                def on_page(page: ShortInterestPage) -> None:
                    nonlocal pages
                    pages += 1
                    counts["pages"] += 1
                    counts["rows"] += _rows_kept(page, cutoff)
                    report("page", security.code)

                frame = await fetch_history(security, num=num, since=cutoff, on_page=on_page)
            except MoomooError as error:
                counts["done"] += 1
                report("failed", security.code)
                return SymbolResult(security.code, empty_frame(security.market), pages, error)
            counts["done"] += 1
            report("done", security.code)
            return SymbolResult(security.code, frame, pages)

    tasks = [asyncio.ensure_future(walk(security)) for security in securities]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _rows_kept(page: ShortInterestPage, cutoff: dt.date | None) -> int:
    """How many of the page's rows the history keeps: ``since`` drops the dated older ones."""
    if cutoff is None:
        return len(page)
    since = cutoff.isoformat()
    # records() hold timestamp_str second, None where OpenD left it out.
    return sum(1 for record in page.records() if record[1] is None or record[1] >= since)


async def fetch_many(
    fetch_history: FetchHistory,
    codes: Iterable[str],
    *,
    since: dt.date | str | None = None,
    num: int = 50,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
) -> pd.DataFrame:
    """Fetch every code's history into one frame with a leading ``code`` column.

    Rows are grouped by code in the order the codes were given, newest first within each. Mixed
    markets share ``timestamp``, ``timestamp_str`` and the price columns; a column of the other
    market is missing (``<NA>``/NaN) on a row. If any symbol fails, `FetchManyError`
    carries the failures and the frame of everything that did arrive.
    """
    securities = check_codes(codes)
    results: dict[str, SymbolResult] = {}
    async for result in iter_many(
        fetch_history,
        [s.code for s in securities],
        since=since,
        num=num,
        concurrency=concurrency,
        on_progress=on_progress,
    ):
        results[result.code] = result
    dtypes = _union_dtypes(securities)
    parts = [
        results[s.code].frame.assign(code=s.code)
        for s in securities
        if results[s.code].ok and len(results[s.code].frame)
    ]
    if parts:
        # A market none of whose codes brought rows has no part to lend its columns their
        # dtypes: reindexing alone would make its Int64 columns float64.
        frame = pd.concat(parts, ignore_index=True).reindex(columns=list(dtypes)).astype(dtypes)
    else:
        frame = pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})
    frame.attrs["next_key"] = "-1"
    failures = {code: r.error for code, r in results.items() if r.error is not None}
    if failures:
        raise FetchManyError(frame, failures)
    return frame


def _union_dtypes(securities: list[Security]) -> dict[str, Any]:
    """``code``, then the columns of the codes' markets (US first) with their dtypes."""
    dtypes: dict[str, Any] = {"code": pd.StringDtype()}
    markets = {s.market for s in securities}
    for market in (Market.US, Market.HK):
        if market in markets or not markets:
            for column, dtype in empty_frame(market).dtypes.items():
                dtypes.setdefault(str(column), dtype)
    return dtypes
