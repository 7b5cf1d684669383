"""``aiomoomoo simulate``: serve the OpenD simulator until interrupted.

The simulator (`aiomoomoo.testing`) is imported only when this command runs, so the other
commands never load it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

from . import _args
from ._gateway import address

if TYPE_CHECKING:
    from ..testing import OpenDSimulator

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` to the command line."""
    parser = subparsers.add_parser(
        "simulate",
        help="run the OpenD simulator",
        description=(
            "Serve the aiomoomoo OpenD simulator until interrupted (Ctrl-C or SIGTERM). Once it "
            "accepts connections it prints 'listening on HOST:PORT' on stdout (and 'websocket "
            "listening on HOST:PORT' with --websocket-port); an IPv6 HOST is in brackets."
        ),
    )
    parser.add_argument(
        "--host", type=_args.host, default="127.0.0.1", help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_args.bind_port,
        default=11111,
        help="port to bind; 0 picks a free one and prints it (default %(default)s)",
    )
    quota = parser.add_mutually_exclusive_group()
    quota.add_argument(
        "--quota",
        type=_args.quota,
        # A string, converted by --quota's type only when this command runs.
        default="30/30",
        metavar="N/SECONDS",
        help="short-interest requests allowed in any SECONDS-long window (default 30/30)",
    )
    quota.add_argument(
        "--no-quota",
        dest="quota",
        action="store_const",
        const=None,
        help="serve short-interest requests without any rate limit",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated histories (default 0)"
    )
    parser.add_argument(
        "--keepalive-interval",
        type=_keepalive_interval,
        default=10,
        metavar="SECONDS",
        help="keep-alive interval InitConnect announces to clients (default %(default)s)",
    )
    parser.add_argument(
        "--websocket-port",
        type=_args.bind_port,
        metavar="PORT",
        help="also serve OpenD's WebSocket protocol (the JavaScript SDK's) on this port; 0 picks "
        "a free one (needs the websocket extra)",
    )
    parser.add_argument(
        "--websocket-key",
        metavar="KEY",
        help="key WebSocket clients must log in with (default: none needed)",
    )
    parser.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="en",
        help="language of OpenD's texts in failure replies, as OpenD's Lang setting (default en)",
    )
    parser.add_argument(
        "--publication-lag",
        type=_publication_lag,
        metavar="LAGS",
        help="publish each generated row some business days after its date: 'real' (US 7, "
        "HK 5, as FINRA and the SFC do), 'none', or e.g. 'US=7,HK=5' (default: none, every row "
        "public on its own date)",
    )
    parser.add_argument(
        "--data",
        type=_data_file,
        metavar="FILE",
        help="serve these rows (CSV or Parquet in the official columns plus a code column, as "
        "'short-interest --format csv|parquet' writes them) instead of generated ones",
    )
    parser.set_defaults(run=_run)


def _data_file(text: str) -> dict[str, Any]:
    from ..testing import load_histories

    try:
        return load_histories(text)
    except (OSError, ImportError, TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot serve {text}: {exc}") from None


def _publication_lag(text: str) -> dict[str, int]:
    from ..testing import NO_PUBLICATION_LAG, PUBLICATION_LAGS
    from ..testing._publication import check_publication_lag

    named = {"real": PUBLICATION_LAGS, "none": NO_PUBLICATION_LAG}
    if text.strip().lower() in named:
        return dict(named[text.strip().lower()])
    lags: dict[str, int] = {}
    for part in text.split(","):
        market, equals, days = part.partition("=")
        if not equals or not days.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"publication lag {text!r} is not 'real', 'none' or MARKET=DAYS[,...], "
                "for example US=7,HK=5"
            )
        lags[market.strip().upper()] = int(days)
    try:
        check_publication_lag(lags)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return lags


def _keepalive_interval(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = -1
    # Clients drop a link that stays silent for 33 s, so an interval near that is useless.
    if not 0 <= seconds <= 30:
        raise argparse.ArgumentTypeError(
            f"keep-alive interval {text!r} is not a whole number of seconds from 0 to 30"
        )
    return seconds


def _run(args: argparse.Namespace) -> int:
    from ..testing import OpenDSimulator

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.websocket_key is not None and (args.websocket_port is None or not args.websocket_key):
        print(
            "aiomoomoo simulate: --websocket-key needs --websocket-port and must not be empty",
            file=sys.stderr,
        )
        return 2
    simulator = OpenDSimulator(
        args.host,
        args.port,
        quota=args.quota,
        seed=args.seed,
        keepalive_interval=args.keepalive_interval,
        websocket_port=args.websocket_port,
        websocket_key=args.websocket_key,
        histories=args.data,
        lang=args.lang,
        publication_lag=args.publication_lag,
    )
    try:
        asyncio.run(_serve(simulator))
    except KeyboardInterrupt:
        # Only where the loop cannot take over SIGINT (Windows): the interrupt is the way out.
        pass
    except OSError as exc:
        where = address(args.host, args.port)
        print(f"aiomoomoo simulate: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # --websocket-port without the websocket extra
        print(f"aiomoomoo simulate: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(simulator: OpenDSimulator) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with simulator:
        print(f"listening on {address(simulator.host, simulator.port)}", flush=True)
        if simulator.websocket_port is not None:
            where = address(simulator.host, simulator.websocket_port)
            print(f"websocket listening on {where}", flush=True)
        await stop.wait()
