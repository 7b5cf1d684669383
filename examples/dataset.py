"""A local dataset kept current: sync a few codes into a store, again, then after a publication.

With no arguments it runs against the OpenD simulator, started in-process, and a store in a
temporary directory that is deleted at the end; it then moves the simulator a publication on
(one row revised, as FINRA does) to show what the next sync brings. Give --store to keep the
file, and --host and/or --port to sync from a real OpenD instead (the publication step is then
skipped: only the simulator can publish on demand):

    python examples/dataset.py
    python examples/dataset.py --store short.db --host 127.0.0.1 --port 11111
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import aiomoomoo
from aiomoomoo.testing import PUBLICATION_LAGS, OpenDSimulator

CODES = ("US.AAPL", "US.TSLA", "HK.00700")


@contextlib.asynccontextmanager
async def opend(host: str | None, port: int | None) -> AsyncIterator[OpenDSimulator | None]:
    """Yield the in-process simulator, or None when a real OpenD was given."""
    if host is None and port is None:
        # Published as FINRA and the SFC do, some business days after each row's date.
        async with OpenDSimulator(port=0, publication_lag=PUBLICATION_LAGS) as simulator:
            print(f"(using the OpenD simulator on {simulator.host}:{simulator.port})")
            yield simulator
    else:
        yield None


@contextlib.contextmanager
def store_path(given: str | None) -> Iterator[Path]:
    """The store file to use: the one given, or one in a temporary directory."""
    if given is not None:
        yield Path(given)
        return
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "short.db"


def show(label: str, report: aiomoomoo.SyncReport) -> None:
    print(
        f"{label}: {report.requests} requests, {len(report.synced)} synced, "
        f"{len(report.skipped)} not due, {report.rows_new} new rows, "
        f"{report.rows_revised} revised"
    )
    for market, status in report.markets.items():
        found = {None: "not probed", True: "probes found it", False: "probes found nothing"}
        print(
            f"  {market.name}: newest published {status.newest}, {found[status.found]}, "
            f"next expected from {status.next_publication}"
        )
    for code, error in report.failures.items():
        print(f"  FAILED {code}: {error}")


async def main(host: str | None, port: int | None, given: str | None) -> int:
    async with opend(host, port) as simulator:
        address = (host or "127.0.0.1", port or 11111)
        if simulator is not None:
            address = (simulator.host, simulator.port)
        # The simulator publishes up to its as_of: "today" is that day, so the publication
        # schedule decides as it would on the day; against a real OpenD, today is today.
        today = simulator.as_of if simulator is not None else None
        with (
            store_path(given) as path,
            aiomoomoo.ShortInterestStore(path) as store,
        ):
            async with aiomoomoo.Client(*address) as client:
                # 1. The first sync fetches every code's whole history, page by page.
                report = await store.sync(client, CODES, today=today)
                show("first sync", report)
                # 2. At once again: no US publication can be out yet, so no US code is asked;
                # the HK one of 04-24 can be (it is out tomorrow): one probe finds nothing.
                report = await store.sync(client, CODES, today=today)
                show("second sync", report)
                if simulator is not None:
                    # 3. Sixteen days on: a US settlement date and three HK weeks published, and
                    # each code's newest row from before revised, as FINRA does. Probes find
                    # the publications and every code follows.
                    before = dt.datetime.now(dt.UTC)
                    simulator.advance(16, revise=True)
                    report = await store.sync(client, CODES, today=simulator.as_of)
                    show("after a publication", report)
            summary = store.summary()
            print(summary[["code", "rows", "oldest", "newest"]].to_string(index=False))
            columns = ["timestamp_str", "shares_short", "shares_short_change_percent"]
            print(store.history("US.AAPL")[columns].head(3).to_string(index=False))
            if simulator is not None:
                # What the store knew before the publication, as a backtest must see it.
                then = store.history("US.AAPL", as_of=before)
                print("as it was before the publication:")
                print(then[columns].head(2).to_string(index=False))
            return 0 if report.ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="aiomoomoo: keep a local dataset current")
    parser.add_argument("--store", help="the SQLite file to keep (default: a temporary one)")
    parser.add_argument("--host", help="OpenD host (default: run the simulator in-process)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        sys.exit(asyncio.run(main(args.host, args.port, args.store)))
    except aiomoomoo.ConnectError as exc:
        sys.exit(f"error: {exc}")
