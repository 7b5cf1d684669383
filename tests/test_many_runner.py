"""The many-symbol runner, pure: fake work functions, no sockets.

`run_each` is the one place that decides how many walks run at once and what a walk's failure
means, for `fetch_short_interest_many` and the store's sync alike.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from aiomoomoo import ClientClosedError, RequestTimeoutError, UnknownSecurityError
from aiomoomoo._many import Outcome, run_each

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("concurrency", [1, 2, 5])
async def test_at_most_concurrency_works_run_at_once_started_in_order(concurrency: int) -> None:
    running = peak = 0
    started: list[int] = []

    async def work(item: int) -> int:
        nonlocal running, peak
        started.append(item)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (item % 3))
        running -= 1
        return item * 10

    outcomes = [o async for o in run_each(range(8), work, concurrency=concurrency)]
    assert peak == min(concurrency, 8)
    assert started == list(range(8))
    assert sorted((o.item, o.result, o.error) for o in outcomes) == [
        (i, i * 10, None) for i in range(8)
    ]


async def test_outcomes_come_as_works_finish() -> None:
    release = {item: asyncio.Event() for item in "abc"}

    async def work(item: str) -> str:
        await release[item].wait()
        return item.upper()

    outcomes = run_each("abc", work, concurrency=3)
    first = asyncio.ensure_future(anext(outcomes))
    await asyncio.sleep(0)
    release["b"].set()
    assert (await first).item == "b"
    release["c"].set()
    release["a"].set()
    assert {o.item async for o in outcomes} == {"a", "c"}


async def test_a_failing_work_is_its_items_outcome_and_the_others_go_on() -> None:
    reported: list[Outcome[str, str]] = []

    async def work(item: str) -> str:
        if item == "US.NOPE":
            raise UnknownSecurityError("unknown stock", ret_type=-1, err_code=2, proto_id=3249)
        await asyncio.sleep(0.001)
        return item

    outcomes = {
        o.item: o
        async for o in run_each(
            ["US.AAPL", "US.NOPE", "HK.00700"], work, concurrency=2, on_outcome=reported.append
        )
    }
    assert isinstance(outcomes["US.NOPE"].error, UnknownSecurityError)
    assert outcomes["US.NOPE"].result is None
    assert outcomes["US.AAPL"].result == "US.AAPL"
    assert outcomes["HK.00700"].error is None
    # Each outcome is reported once, as its work ends.
    assert sorted(o.item for o in reported) == sorted(outcomes)


async def test_the_outcome_is_reported_before_it_is_yielded() -> None:
    order: list[str] = []

    async def work(item: str) -> str:
        return item

    async for outcome in run_each(
        ["x"], work, concurrency=1, on_outcome=lambda o: order.append(f"reported {o.item}")
    ):
        order.append(f"yielded {outcome.item}")
    assert order == ["reported x", "yielded x"]


@pytest.mark.parametrize(
    "error",
    [ClientClosedError("the client is closed"), ValueError("a bug")],
    ids=["fatal", "not-a-moomoo-error"],
)
async def test_a_fatal_error_ends_the_run_and_cancels_the_other_works(error: Exception) -> None:
    cancelled: list[int] = []

    async def work(item: int) -> int:
        if item == 0:
            await asyncio.sleep(0.001)
            raise error
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    async def run() -> None:
        async with asyncio.timeout(5):
            async for _ in run_each(range(4), work, concurrency=4, fatal=(ClientClosedError,)):
                pass

    with pytest.raises(type(error)):
        await run()
    assert sorted(cancelled) == [1, 2, 3]


async def test_an_error_not_listed_as_fatal_is_one_items_outcome() -> None:
    async def work(item: int) -> int:
        raise RequestTimeoutError(f"no reply for {item}")

    outcomes = [o async for o in run_each([1, 2], work, concurrency=2, fatal=(ClientClosedError,))]
    assert all(isinstance(o.error, RequestTimeoutError) for o in outcomes)


async def test_leaving_early_cancels_the_works_still_running() -> None:
    cancelled: list[int] = []

    async def work(item: int) -> int:
        if item:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(item)
                raise
        return item

    async with contextlib.aclosing(run_each(range(3), work, concurrency=3)) as outcomes:
        async for outcome in outcomes:
            assert outcome.item == 0
            break
    assert sorted(cancelled) == [1, 2]
    assert [t for t in asyncio.all_tasks() if "run_each" in repr(t.get_coro())] == []


async def test_told_to_contain_every_exception_a_bug_in_one_work_is_that_items_outcome() -> None:
    # The store's sync runs so: one code's OSError must not cancel the healthy walks.
    async def work(item: int) -> int:
        if item == 0:
            raise OSError(75, "Value too large for defined data type")
        await asyncio.sleep(0.001)
        return item

    outcomes = {
        o.item: o
        async for o in run_each(
            range(4), work, concurrency=4, fatal=(ClientClosedError,), contain=Exception
        )
    }
    assert isinstance(outcomes[0].error, OSError)
    assert [outcomes[i].result for i in (1, 2, 3)] == [1, 2, 3]


async def test_containing_every_exception_still_ends_the_run_on_a_fatal_one() -> None:
    async def work(item: int) -> int:
        if item == 0:
            raise ClientClosedError("closed")
        await asyncio.sleep(10)
        return item

    async def run() -> None:
        async with asyncio.timeout(5):
            async for _ in run_each(
                range(3), work, concurrency=3, fatal=(ClientClosedError,), contain=Exception
            ):
                pass

    with pytest.raises(ClientClosedError):
        await run()
