"""A plain script, no asyncio: `BlockingClient`, from one thread and from a pool of threads.

With no arguments it starts the OpenD simulator on a thread of its own and runs against it;
give --host and/or --port to use a real OpenD instead:

    python examples/blocking_script.py
    python examples/blocking_script.py --host 127.0.0.1 --port 11111
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import aiomoomoo
from aiomoomoo.testing import SimulatorThread

CODES = ("US.AAPL", "US.TSLA", "US.NVDA", "HK.00700", "HK.09988")


@contextlib.contextmanager
def opend(host: str | None, port: int | None) -> Iterator[tuple[str, int]]:
    """Yield the OpenD address to use: the one given, or a simulator's on its own thread."""
    if host is None and port is None:
        with SimulatorThread(port=0) as simulator:
            print(f"(using the OpenD simulator on {simulator.host}:{simulator.port})")
            yield simulator.host, simulator.port
    else:
        yield host or "127.0.0.1", port or 11111


def main(host: str | None, port: int | None) -> None:
    with opend(host, port) as address, aiomoomoo.BlockingClient(*address) as client:
        # 1. One page, as a plain call.
        page = client.get_short_interest("US.AAPL", num=3)
        print(page)

        # 2. A walk with a plain for loop; break releases it.
        for page in client.iter_short_interest("HK.00700", num=50):
            print(f"{page.code}: {len(page)} rows, next_key={page.next_key!r}")
            break

        # 3. Threads share the client: one connection, one quota.
        def newest(code: str) -> str:
            frame = client.fetch_short_interest(code, since="2026-01-01")
            return f"{code}: {len(frame)} rows since 2026, newest {frame['timestamp_str'].iloc[0]}"

        with ThreadPoolExecutor(max_workers=len(CODES)) as pool:
            for line in pool.map(newest, CODES):
                print(line)
    # Leaving the with block closed the client: its loop thread has ended.
    print(f"closed: {client.closed}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="aiomoomoo: a blocking script")
    parser.add_argument("--host", help="OpenD host (default: run the simulator on a thread)")
    parser.add_argument("--port", type=int, help="OpenD port (default 11111 with --host)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        main(args.host, args.port)
    except aiomoomoo.ConnectError as exc:
        sys.exit(f"error: {exc}")
