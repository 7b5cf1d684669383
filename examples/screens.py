"""Questions across codes: sync a universe, then screen it and rank the newest publication's moves.

With no arguments it runs against the OpenD simulator, started in-process, and a store in a
temporary directory: it syncs the simulator's universe, lets a publication happen (sixteen days,
newest rows revised as FINRA does), syncs again and then asks the store

- which US codes have at least 2 days to cover, biggest short-position increase first
  (`ShortInterestStore.screen`);
- which codes moved most in the newest publication, per market (`ShortInterestStore.changes`);
- the same ranking as the store knew it before the publication (``as_of``);
- and hands every row to Arrow, as Polars or DuckDB would take it (`to_arrow`).

Give --store to keep the file, and --host and/or --port to sync from a real OpenD instead:

    python examples/screens.py
    python examples/screens.py --store short.db --host 127.0.0.1 --port 11111 US.AAPL HK.00700
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiomoomoo
from aiomoomoo.testing import OpenDSimulator


@contextlib.contextmanager
def store_path(given: str | None) -> Iterator[Path]:
    """The store file to use: the one given, or one in a temporary directory."""
    if given is not None:
        yield Path(given)
        return
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "short.db"


async def sync(
    store: aiomoomoo.ShortInterestStore,
    address: tuple[str, int],
    codes: Sequence[str],
    today: dt.date | None,
    rate_limit: aiomoomoo.RateLimit = (30, 30.0),
    every: bool = False,
) -> aiomoomoo.SyncReport:
    async with aiomoomoo.Client(*address, rate_limit=rate_limit) as client:
        report = await store.sync(client, codes, today=today, every=every)
    new, revised = report.rows_new, report.rows_revised
    print(f"synced {len(report.synced)} codes: {new} new rows, {revised} revised")
    return report


async def fill(store: aiomoomoo.ShortInterestStore, args: argparse.Namespace) -> dt.datetime | None:
    """Sync the store; with the simulator, a publication later too. The moment between the two
    syncs (None against a real OpenD)."""
    if args.host is not None or args.port is not None:
        address = (args.host or "127.0.0.1", args.port or 11111)
        await sync(store, address, args.codes or ["US.AAPL", "US.TSLA", "HK.00700"], None)
        return None
    # A simulator without OpenD's quota, so the example takes a second rather than a minute.
    async with OpenDSimulator(port=0, quota=None) as simulator:
        address = (simulator.host, simulator.port)
        codes = args.codes or simulator.codes
        await sync(store, address, codes, simulator.as_of, rate_limit=None)
        before = dt.datetime.now(dt.UTC)
        simulator.advance(16, revise=True)
        # This simulator publishes each row on its own date, days before OpenD would, so the
        # store's schedule would not look for the US rows yet: ask every code instead.
        await sync(store, address, codes, simulator.as_of, rate_limit=None, every=True)
        return before


def ask(store: aiomoomoo.ShortInterestStore, before: dt.datetime | None) -> None:
    us = ["code", "timestamp_str", "shares_short", "days_to_cover", "shares_short_change_percent"]
    squeeze = store.screen("US", min_days_to_cover=2, by="change_percent", top=5)
    print("US, 2+ days to cover, biggest increase first:")
    print(squeeze[us].to_string(index=False))
    for market in ("US", "HK"):
        moves = store.changes(market).head(3)
        print(f"{market} biggest moves in the newest publication:")
        print(moves.to_string(index=False))
    if before is not None:
        then = store.changes("US", as_of=before).head(3)
        print("US biggest moves as the store knew them before that publication:")
        print(then[["code", "date", then.columns[-1]]].to_string(index=False))
    try:
        table = store.to_arrow()
    except ImportError:
        print("(pip install 'aiomoomoo[parquet]' for the Arrow table)")
        return
    print(f"Arrow: {table.num_rows} rows, {table.num_columns} columns, ready for pl.from_arrow")


async def main(args: argparse.Namespace) -> int:
    with store_path(args.store) as path, aiomoomoo.ShortInterestStore(path) as store:
        before = await fill(store, args)
        ask(store, before)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="aiomoomoo: screens and movers from a store")
    parser.add_argument("codes", nargs="*", help="codes to sync (default: the simulator's)")
    parser.add_argument("--store", help="the SQLite file to keep (default: a temporary one)")
    parser.add_argument("--host", help="OpenD host (default: run the simulator in-process)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except aiomoomoo.ConnectError as exc:
        sys.exit(f"error: {exc}")
