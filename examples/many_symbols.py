"""Many symbols at once: concurrent history walks over one connection and one quota.

With no arguments it fetches a watchlist's history since 2024 from the OpenD simulator, started
in-process; give --host and/or --port to use a real OpenD instead, and codes to choose them:

    python examples/many_symbols.py
    python examples/many_symbols.py --since 2025-06-01 US.AAPL HK.00700 US.NOPE
    python examples/many_symbols.py --stream --host 127.0.0.1 --port 11111

Progress goes to stderr, results to stdout. The exit status is 1 if any symbol failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

import pandas as pd

import aiomoomoo
from aiomoomoo.testing import OpenDSimulator

WATCHLIST = ("US.AAPL", "US.TSLA", "US.NVDA", "US.MSFT", "HK.00700", "HK.09988", "HK.03690")


@contextlib.asynccontextmanager
async def opend(host: str | None, port: int | None) -> AsyncIterator[tuple[str, int]]:
    """Yield the OpenD address to use: the one given, or an in-process simulator's."""
    if host is None and port is None:
        async with OpenDSimulator(port=0) as simulator:
            print(f"(using the OpenD simulator on {simulator.host}:{simulator.port})")
            yield simulator.host, simulator.port
    else:
        yield host or "127.0.0.1", port or 11111


def show_progress(progress: aiomoomoo.Progress) -> None:
    """Report progress on stderr. It runs inside the event loop, so it must be quick."""
    if progress.event == "page":
        return
    print(
        f"[{progress.symbols_done}/{progress.symbols_total}] {progress.code} {progress.event}; "
        f"{progress.pages} pages, {progress.rows} rows so far",
        file=sys.stderr,
    )


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows, newest and oldest date per code, in the order the codes were given."""
    return frame.groupby("code", sort=False).agg(
        rows=("timestamp", "size"),
        newest=("timestamp_str", "first"),
        oldest=("timestamp_str", "last"),
    )


async def fetch_all(client: aiomoomoo.Client, codes: Sequence[str], since: str) -> int:
    """Everything in one DataFrame; a failed symbol leaves the others' data usable."""
    try:
        frame = await client.fetch_short_interest_many(
            codes, since=since, concurrency=4, on_progress=show_progress
        )
    except aiomoomoo.FetchManyError as exc:
        for code, error in exc.failures.items():
            print(f"FAILED {code}: {error}")
        frame, status = exc.frame, 1
    else:
        status = 0
    print(summarise(frame).to_string())
    return status


async def stream(client: aiomoomoo.Client, codes: Sequence[str], since: str) -> int:
    """Each symbol as soon as its walk completes, in completion order."""
    status = 0
    async for result in client.iter_short_interest_many(
        codes, since=since, concurrency=4, on_progress=show_progress
    ):
        if result.error is not None:
            print(f"FAILED {result.code}: {result.error}")
            status = 1
        else:
            print(f"{result.code}: {len(result.frame)} rows in {result.pages} pages")
    return status


async def main(args: argparse.Namespace) -> int:
    async with opend(args.host, args.port) as address, aiomoomoo.Client(*address) as client:
        if args.stream:
            return await stream(client, args.codes, args.since)
        return await fetch_all(client, args.codes, args.since)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fetch many symbols' short interest at once")
    parser.add_argument("codes", nargs="*", default=list(WATCHLIST), help="codes to fetch")
    parser.add_argument("--since", default="2024-01-01", help="oldest date, YYYY-MM-DD")
    parser.add_argument("--stream", action="store_true", help="print each symbol as it completes")
    parser.add_argument("--host", help="OpenD host (default: run the simulator in-process)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except aiomoomoo.ConnectError as exc:
        sys.exit(f"error: {exc}")
