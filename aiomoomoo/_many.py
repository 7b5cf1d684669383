"""Many symbols at once: concurrent history walks over one client, one quota.

`run_each` is the one runner: each item's work (a symbol's walk) runs in its own task, at most
``concurrency`` at a time, and a work that fails is that item's outcome, not the run's end. The
many-symbol fetches (`iter_many`, `fetch_many`) and the store's sync both run on it. Every
request still goes through the client's quota, so the walks share OpenD's budget fairly (first
come, first served). The walks are given as callables, so this module needs no client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

import pandas as pd

from ._errors import FetchManyError, MoomooError
from ._frames import empty_frame
from ._options import check_codes, check_concurrency, check_num, check_since
from ._paging import ShortInterestPage
from ._security import Market, Security

__all__ = [
    "FetchHistory",
    "Outcome",
    "Progress",
    "SymbolResult",
    "fetch_many",
    "iter_many",
    "run_each",
]


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


T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """How one item's work ended: its ``result``, or the ``error`` that stopped it (of a type
    the run was told to ``contain``)."""

    item: T
    result: R | None = None
    error: Exception | None = None


async def run_each(
    items: Iterable[T],
    work: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    fatal: tuple[type[MoomooError], ...] = (),
    contain: type[Exception] = MoomooError,
    on_outcome: Callable[[Outcome[T, R]], None] | None = None,
) -> AsyncGenerator[Outcome[T, R], None]:
    """Run ``work(item)`` for every item, at most ``concurrency`` at once, started in the
    order given; yield each `Outcome` as it completes.

    The one place that runs many walks: an exception of the ``contain`` type (`MoomooError`
    unless told otherwise; `Exception` for work whose every failure is its item's) ends that
    item's work only and is its outcome's ``error``, the others go on; an error of a ``fatal``
    type, or any other exception, ends the run and is raised (so do cancellation and
    `KeyboardInterrupt`, which are no `Exception`). ``on_outcome`` is called with each outcome
    as soon as its work ends, before it is yielded. Leaving early, or an error, cancels every
    work still running.
    """
    limit = asyncio.Semaphore(concurrency)

    # Named walk: each task is one code's walk (tests and debuggers find them by this name).
    async def walk(item: T) -> Outcome[T, R]:
        async with limit:
            try:
                outcome: Outcome[T, R] = Outcome(item, result=await work(item))
            except fatal:
                raise
            except contain as error:
                outcome = Outcome(item, error=error)
            if on_outcome is not None:
                on_outcome(outcome)
            return outcome

    tasks = [asyncio.ensure_future(walk(item)) for item in items]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
    concurrency = check_concurrency(concurrency)
    total = len(securities)
    counts = {"pages": 0, "rows": 0, "done": 0}
    pages: dict[str, int] = {s.code: 0 for s in securities}

    def report(event: Literal["page", "done", "failed"], code: str) -> None:
        if on_progress is not None:
            on_progress(
                Progress(event, code, counts["pages"], counts["rows"], counts["done"], total)
            )

    async def history(security: Security) -> pd.DataFrame:
        def on_page(page: ShortInterestPage) -> None:
            pages[security.code] += 1
            counts["pages"] += 1
            counts["rows"] += _rows_kept(page, cutoff)
            report("page", security.code)

        return await fetch_history(security, num=num, since=cutoff, on_page=on_page)

    def finished(outcome: Outcome[Security, pd.DataFrame]) -> None:
        counts["done"] += 1
        report("done" if outcome.error is None else "failed", outcome.item.code)

    async with contextlib.aclosing(
        run_each(securities, history, concurrency=concurrency, on_outcome=finished)
    ) as outcomes:
        async for outcome in outcomes:
            security = outcome.item
            if outcome.error is not None or outcome.result is None:
                frame = empty_frame(security.market)
                # The run contains MoomooError only: anything else was raised.
                error = cast(MoomooError | None, outcome.error)
                yield SymbolResult(security.code, frame, pages[security.code], error)
            else:
                yield SymbolResult(security.code, outcome.result, pages[security.code])


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
