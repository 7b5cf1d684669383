"""The ``aiomoomoo`` command line: ``short-interest`` fetches histories, ``simulate`` serves them.

Each subcommand is one ``add_<name>_parser(subparsers)`` function that builds its parser and
binds its runner with ``set_defaults(run=...)``; `SUBCOMMANDS` lists them. Adding a subcommand
means writing one such function (in a module of its own if it is large) and appending it there,
nothing else. Shared pieces live beside this module: argument types in `aiomoomoo._cli_args`,
escaping, formats and tables in `aiomoomoo._cli_output`, the progress display in
`aiomoomoo._cli_progress`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import pandas as pd

from .. import __version__
from .._client import Client
from .._errors import FetchManyError, MoomooError
from ..testing import OpenDSimulator, Quota, load_histories
from . import _args as _cli_args
from ._output import FORMATS, check_writable, emit_frame, format_for, print_error
from ._progress import ProgressDisplay, keep_ticking, open_progress
from ._store import STORE_SUBCOMMANDS

__all__ = ["SUBCOMMANDS", "add_short_interest_parser", "add_simulate_parser", "main"]

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
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
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


# -- simulate -------------------------------------------------------------------------------


def add_simulate_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run the OpenD simulator",
        description=(
            "Serve the aiomoomoo OpenD simulator until interrupted (Ctrl-C or SIGTERM). Once it "
            "accepts connections it prints 'listening on HOST:PORT' on stdout (and 'websocket "
            "listening on HOST:PORT' with --websocket-port)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=_cli_args.port,
        default=11111,
        help="port to bind; 0 picks a free one and prints it (default %(default)s)",
    )
    quota = parser.add_mutually_exclusive_group()
    quota.add_argument(
        "--quota",
        type=_cli_args.quota,
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
    parser.add_argument(
        "--websocket-port",
        type=_cli_args.port,
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
        "--data",
        type=_data_file,
        metavar="FILE",
        help="serve these rows (CSV or Parquet in the official columns plus a code column, as "
        "'short-interest --format csv|parquet' writes them) instead of generated ones",
    )
    parser.set_defaults(run=_run_simulate)


def _data_file(text: str) -> dict[str, Any]:
    try:
        return load_histories(text)
    except (OSError, ImportError, TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot serve {text}: {exc}") from None


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
        print(f"listening on {simulator.host}:{simulator.port}", flush=True)
        if simulator.websocket_port is not None:
            print(f"websocket listening on {simulator.host}:{simulator.websocket_port}", flush=True)
        await stop.wait()


# -- short-interest -------------------------------------------------------------------------


def add_short_interest_parser(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "short-interest",
        help="fetch short-interest histories and write them out",
        description=(
            "Fetch the short-interest history of each CODE (US.<symbol> or HK.<symbol>) from "
            "OpenD, concurrently and within its quota. On a terminal each market gets its own "
            "table showing the newest rows of each code (--all for every row); piped or written "
            "with -o, every row goes out as one table with a leading code column."
        ),
    )
    parser.add_argument(
        "codes", nargs="+", metavar="CODE", type=_cli_args.code, help="e.g. US.AAPL HK.00700"
    )
    parser.add_argument("--host", default="127.0.0.1", help="OpenD's address (default %(default)s)")
    parser.add_argument(
        "--port", type=_cli_args.port, default=11111, help="OpenD's port (default %(default)s)"
    )
    parser.add_argument(
        "--since",
        type=_cli_args.date,
        metavar="YYYY-MM-DD",
        help="only rows from this trading date on",
    )
    parser.add_argument(
        "--num",
        type=_cli_args.page_size,
        default=50,
        help="rows per request, 1 to 50 (default %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the --output file's extension, else table)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write here, not stdout (.csv, .json, .parquet or .txt pick the format)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="on a terminal, show every row rather than the newest rows of each code",
    )
    parser.add_argument(
        "--concurrency",
        type=_cli_args.positive_int,
        default=4,
        help="symbols fetched at once (default 4)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_cli_args.rate_limit,
        default=(30, 30.0),
        metavar="N/SECONDS",
        help="at most N requests in any SECONDS (default 30/30, OpenD's quota)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="fetch from the simulator built into aiomoomoo instead of an OpenD",
    )
    parser.set_defaults(run=_run_short_interest)


_COMMAND: Final = "short-interest"


def _run_short_interest(args: argparse.Namespace) -> int:
    duplicate = next((c for i, c in enumerate(args.codes) if c in args.codes[:i]), None)
    if duplicate is not None:
        print_error(_COMMAND, f"code {duplicate!r} is listed twice")
        return 2
    try:
        fmt = format_for(args.format, args.output)
    except ValueError as exc:
        print_error(_COMMAND, exc)
        return 2
    if fmt == "parquet":
        if args.output is None:
            print_error(_COMMAND, "--format parquet needs --output FILE")
            return 2
        try:
            import pyarrow  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            print_error(_COMMAND, "parquet output needs pyarrow: pip install 'aiomoomoo[parquet]'")
            return 1
    if args.output is not None:
        try:
            check_writable(args.output)
        except OSError as exc:
            print_error(_COMMAND, f"cannot write {args.output}: {exc.strerror or exc}")
            return 1
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    progress = open_progress(sys.stderr, quota=args.rate_limit) if sys.stderr.isatty() else None
    try:
        frame, failures = asyncio.run(_fetch(args, progress))
    except MoomooError as exc:
        print_error(_COMMAND, exc)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if progress is not None:
            progress.close()
    for code, error in failures.items():
        print_error(_COMMAND, f"{code}: {error}")
    try:
        emit_frame(frame, fmt, args.output, all_rows=args.all)
    except OSError as exc:
        where = args.output if args.output is not None else "standard output"
        print_error(_COMMAND, f"cannot write {where}: {exc.strerror or exc}")
        return 1
    return 1 if failures else 0


async def _fetch(
    args: argparse.Namespace, progress: ProgressDisplay | None
) -> tuple[pd.DataFrame, dict[str, MoomooError]]:
    async with contextlib.AsyncExitStack() as stack:
        host, port = args.host, args.port
        if args.demo:
            # The demo gateway enforces the same quota the client keeps, as OpenD would.
            quota = Quota(*args.rate_limit)
            simulator = await stack.enter_async_context(OpenDSimulator(port=0, quota=quota))
            host, port = simulator.host, simulator.port
        client = await stack.enter_async_context(
            Client(host, port, retries=3, rate_limit=args.rate_limit)
        )
        if progress is not None:
            ticker = asyncio.create_task(keep_ticking(progress))
            stack.push_async_callback(_cancelled, ticker)
        try:
            frame = await client.fetch_short_interest_many(
                args.codes,
                since=args.since,
                num=args.num,
                concurrency=args.concurrency,
                on_progress=progress.update if progress is not None else None,
            )
        except FetchManyError as exc:
            return exc.frame, exc.failures
        return frame, {}
    raise AssertionError("unreachable")  # pragma: no cover


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


#: Every subcommand, as the function that adds its parser; see the module docstring.
SUBCOMMANDS: Final[tuple[Callable[[SubParsers], Any], ...]] = (
    add_short_interest_parser,
    add_simulate_parser,
    *STORE_SUBCOMMANDS,
)
