"""The ``aiomoomoo`` command line: ``aiomoomoo simulate`` runs the OpenD simulator.

Each subcommand is one ``_add_<name>_parser(subparsers)`` function that builds its parser and
binds its runner with ``set_defaults(run=...)``; :data:`_SUBCOMMANDS` lists them. Adding a
subcommand means writing one such function and appending it there, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeAlias

from . import __version__
from .testing import OpenDSimulator, Quota

__all__ = ["main"]

_SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_Runner: TypeAlias = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Usage errors print a message to stderr and return 2, as argparse does; ``--help`` and
    ``--version`` return 0.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return _exit_status(exc.code)
    run: _Runner = args.run
    return run(args)


def _exit_status(code: str | int | None) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiomoomoo",
        description="Tools around aiomoomoo, the asyncio client for moomoo / Futu OpenD.",
    )
    parser.add_argument("--version", action="version", version=f"aiomoomoo {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add_parser in _SUBCOMMANDS:
        add_parser(subparsers)
    return parser


# -- simulate -------------------------------------------------------------------------------


def _add_simulate_parser(subparsers: _SubParsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run the OpenD simulator",
        description=(
            "Serve the aiomoomoo OpenD simulator until interrupted (Ctrl-C or SIGTERM). Once it "
            "accepts connections it prints 'listening on HOST:PORT' on stdout."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        default=11111,
        help="port to bind; 0 picks a free one and prints it (default %(default)s)",
    )
    quota = parser.add_mutually_exclusive_group()
    quota.add_argument(
        "--quota",
        type=_quota,
        default=Quota(),
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
    parser.set_defaults(run=_run_simulate)


def _quota(text: str) -> Quota:
    try:
        return Quota.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number from 0 to 65535")
    return port


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


def _run_simulate(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    simulator = OpenDSimulator(
        args.host,
        args.port,
        quota=args.quota,
        seed=args.seed,
        keepalive_interval=args.keepalive_interval,
    )
    try:
        asyncio.run(_serve(simulator))
    except KeyboardInterrupt:
        # Only where the loop cannot take over SIGINT (Windows): the interrupt is the way out.
        pass
    except OSError as exc:
        print(
            f"aiomoomoo simulate: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0


async def _serve(simulator: OpenDSimulator) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with simulator:
        print(f"listening on {simulator.host}:{simulator.port}", flush=True)
        await stop.wait()


_SUBCOMMANDS: Final[tuple[Callable[[_SubParsers], Any], ...]] = (_add_simulate_parser,)
