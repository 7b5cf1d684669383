"""A small trading-bot loop: watch short interest and react when it crosses thresholds.

Every --interval seconds it fetches the newest row of each code on the watchlist, all at once
over one shared client, and prints an ALERT when a US stock's days-to-cover (or an HK stock's
short ratio) rises to its threshold, and a CLEAR when it falls back. It stops cleanly after
--duration seconds, on Ctrl-C or on SIGTERM.

With no --host/--port it runs against the OpenD simulator, started in-process:

    python examples/trading_bot.py --interval 1 --duration 5
    python examples/trading_bot.py --host 127.0.0.1 --port 11111 --interval 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence

import pandas as pd

import aiomoomoo
from aiomoomoo.testing import OpenDSimulator

WATCHLIST = ("US.AAPL", "US.TSLA", "US.NVDA", "US.MSFT", "HK.00700", "HK.09988")
logger = logging.getLogger("trading_bot")


@contextlib.asynccontextmanager
async def opend(host: str | None, port: int | None) -> AsyncIterator[tuple[str, int]]:
    """Yield the OpenD address to use: the one given, or an in-process simulator's."""
    if host is None and port is None:
        async with OpenDSimulator(port=0) as simulator:
            print(f"(using the OpenD simulator on {simulator.host}:{simulator.port})")
            yield simulator.host, simulator.port
    else:
        yield host or "127.0.0.1", port or 11111


class ShortInterestWatcher:
    """Keeps the newest short-interest row of each watched code and reacts to new ones.

    ``thresholds`` maps a market to the column to watch and the level that raises an alert.
    ``timeout`` bounds each reply; it does not count time spent waiting for the quota.
    """

    def __init__(
        self,
        client: aiomoomoo.Client,
        watchlist: Sequence[str],
        thresholds: dict[aiomoomoo.Market, tuple[str, float]],
        *,
        timeout: float,
    ) -> None:
        self.client = client
        self.watchlist = list(watchlist)
        self.thresholds = thresholds
        self.timeout = timeout
        self.refreshes = 0
        self._seen: dict[str, int] = {}  # code -> timestamp of the newest row handled
        self._alerting: set[str] = set()

    async def run(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    async def refresh(self) -> None:
        """Refresh every code concurrently; the client multiplexes them on one socket."""
        self.refreshes += 1
        async with asyncio.TaskGroup() as group:
            for code in list(self.watchlist):
                group.create_task(self.refresh_one(code))

    async def refresh_one(self, code: str) -> None:
        try:
            page = await self.client.get_short_interest(code, num=1, timeout=self.timeout)
        except aiomoomoo.UnknownSecurityError as exc:
            logger.error("dropping %s from the watchlist: %s", code, exc.ret_msg)
            self.watchlist.remove(code)
            return
        except aiomoomoo.MoomooError as exc:
            # Timeouts, a connection that stayed down through the retries, server errors: skip
            # this code for this round and try again next time.
            logger.warning("no update for %s this round: %s", code, exc)
            return
        if len(page.frame) == 0:
            return
        row = page.frame.iloc[0]
        timestamp = int(row["timestamp"])
        if self._seen.get(code) == timestamp:
            return  # nothing new since the last round
        self._seen[code] = timestamp
        self.react(code, page.market, row)

    def react(self, code: str, market: aiomoomoo.Market, row: pd.Series) -> None:
        """Decide on one new row. Plain code, no I/O: easy to unit-test on its own."""
        column, threshold = self.thresholds[market]
        value = row[column]
        if pd.isna(value):
            print(f"{code} {row['timestamp_str']}: no {column} reported")
        elif value >= threshold and code not in self._alerting:
            self._alerting.add(code)
            print(f"ALERT {code} {row['timestamp_str']}: {column} {value:g} >= {threshold:g}")
        elif value < threshold and code in self._alerting:
            self._alerting.discard(code)
            print(f"CLEAR {code} {row['timestamp_str']}: {column} {value:g} < {threshold:g}")
        else:
            print(f"ok    {code} {row['timestamp_str']}: {column} {value:g}")


async def main(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still cancels main()
            loop.add_signal_handler(signum, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)

    def on_event(event: aiomoomoo.GatewayEvent) -> None:
        # Called in the event loop for every push: keep it quick.
        logger.info("OpenD event %s: %s", event.type_name, event.description)

    thresholds = {
        aiomoomoo.Market.US: ("days_to_cover", args.days_to_cover),
        aiomoomoo.Market.HK: ("aggregated_short_ratio", args.hk_short_ratio),
    }
    try:
        async with (
            opend(args.host, args.port) as address,
            aiomoomoo.Client(*address, on_event=on_event) as client,
        ):
            watcher = ShortInterestWatcher(client, args.codes, thresholds, timeout=args.timeout)
            async with asyncio.TaskGroup() as group:
                bot = group.create_task(watcher.run(args.interval))
                await stop.wait()
                # Cancelling is the way to stop: requests in flight or waiting for the quota
                # are abandoned cleanly, and `async with` then closes the client.
                bot.cancel()
    except aiomoomoo.ConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"stopped cleanly after {watcher.refreshes} refreshes")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="watch short interest and alert on thresholds")
    parser.add_argument("codes", nargs="*", default=list(WATCHLIST), help="codes to watch")
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between rounds")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per reply")
    parser.add_argument("--days-to-cover", type=float, default=2.0, help="US alert level")
    parser.add_argument("--hk-short-ratio", type=float, default=1.0, help="HK alert level, %%")
    parser.add_argument("--host", help="OpenD host (default: run the simulator in-process)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    sys.exit(asyncio.run(main(parse_args())))
