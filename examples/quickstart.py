"""Quickstart: one page, a page-by-page walk and a whole history.

With no arguments it starts the OpenD simulator in-process and runs against it; give --host
and/or --port to use a real OpenD instead:

    python examples/quickstart.py
    python examples/quickstart.py --host 127.0.0.1 --port 11111
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

import aiomoomoo
from aiomoomoo.testing import OpenDSimulator


@contextlib.asynccontextmanager
async def opend(host: str | None, port: int | None) -> AsyncIterator[tuple[str, int]]:
    """Yield the OpenD address to use: the one given, or an in-process simulator's."""
    if host is None and port is None:
        async with OpenDSimulator(port=0) as simulator:
            print(f"(using the OpenD simulator on {simulator.host}:{simulator.port})")
            yield simulator.host, simulator.port
    else:
        yield host or "127.0.0.1", port or 11111


async def main(host: str | None, port: int | None) -> None:
    async with opend(host, port) as address, aiomoomoo.Client(*address) as client:
        # 1. One page: the five newest rows.
        page = await client.get_short_interest("US.AAPL", num=5)
        print(page)
        print(page.frame[["timestamp_str", "shares_short", "days_to_cover"]].to_string(index=False))

        # 2. A walk, page by page, newest first, that stops at the page reaching 2025-01-01.
        async for page in client.iter_short_interest("HK.00700", num=50, since="2025-01-01"):
            print(f"{page.code}: {len(page)} rows, next_key={page.next_key!r}")

        # 3. The whole history as one DataFrame (pages of 50, the fewest requests).
        frame = await client.fetch_short_interest("US.AAPL")
        days = aiomoomoo.trading_dates(frame, aiomoomoo.Market.US)
        oldest, newest = days.iloc[-1], days.iloc[0]
        print(f"US.AAPL: {len(frame)} rows from {oldest:%Y-%m-%d} to {newest:%Y-%m-%d}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="aiomoomoo quickstart")
    parser.add_argument("--host", help="OpenD host (default: run the simulator in-process)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except aiomoomoo.ConnectError as exc:
        sys.exit(f"error: {exc}")
