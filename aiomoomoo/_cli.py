"""The ``aiomoomoo`` command line: ``short-interest`` fetches histories, ``simulate`` serves them.

Each subcommand is one ``_add_<name>_parser(subparsers)`` function that builds its parser and
binds its runner with ``set_defaults(run=...)``; `_SUBCOMMANDS` lists them. Adding a
subcommand means writing one such function and appending it there, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import pandas as pd

from . import __version__
from ._client import Client
from ._errors import MoomooError
from ._many import FetchManyError, Progress
from ._security import parse_code
from .testing import OpenDSimulator, Quota, load_histories

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
            "accepts connections it prints 'listening on HOST:PORT' on stdout (and 'websocket "
            "listening on HOST:PORT' with --websocket-port)."
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
    parser.add_argument(
        "--websocket-port",
        type=_port,
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

_FORMATS: Final = ("table", "csv", "json", "parquet")


def _add_short_interest_parser(subparsers: _SubParsers) -> None:
    parser = subparsers.add_parser(
        "short-interest",
        help="fetch short-interest histories and write them out",
        description=(
            "Fetch the short-interest history of each CODE (US.<symbol> or HK.<symbol>) from "
            "OpenD, concurrently and within its quota, and write them as one table with a "
            "leading code column."
        ),
    )
    parser.add_argument(
        "codes", nargs="+", metavar="CODE", type=_code, help="e.g. US.AAPL HK.00700"
    )
    parser.add_argument("--host", default="127.0.0.1", help="OpenD's address (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=11111, help="OpenD's port (default %(default)s)"
    )
    parser.add_argument(
        "--since", type=_date, metavar="YYYY-MM-DD", help="only rows from this trading date on"
    )
    parser.add_argument(
        "--num", type=_num, default=50, help="rows per request, 1 to 50 (default %(default)s)"
    )
    parser.add_argument(
        "--format", choices=_FORMATS, default="table", help="output format (default %(default)s)"
    )
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here, not stdout")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=4, help="symbols fetched at once (default 4)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="fetch from the simulator built into aiomoomoo instead of an OpenD",
    )
    parser.set_defaults(run=_run_short_interest)


def _code(text: str) -> str:
    try:
        return parse_code(text).code
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r} is not YYYY-MM-DD") from None


def _num(text: str) -> int:
    try:
        num = int(text)
    except ValueError:
        num = 0
    if not 1 <= num <= 50:
        raise argparse.ArgumentTypeError(f"num {text!r} is not a whole number from 1 to 50")
    return num


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _run_short_interest(args: argparse.Namespace) -> int:
    if len(set(args.codes)) != len(args.codes):
        print("aiomoomoo short-interest: a code is listed twice", file=sys.stderr)
        return 2
    if args.format == "parquet":
        if args.output is None:
            print("aiomoomoo short-interest: --format parquet needs --output FILE", file=sys.stderr)
            return 2
        try:
            import pyarrow  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            print(
                "aiomoomoo short-interest: parquet output needs pyarrow: "
                "pip install 'aiomoomoo[parquet]'",
                file=sys.stderr,
            )
            return 1
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    progress = _ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    try:
        frame, failures = asyncio.run(_fetch(args, progress))
    except MoomooError as exc:
        print(f"aiomoomoo short-interest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if progress is not None:
            progress.finish()
    for code, error in failures.items():
        print(f"aiomoomoo short-interest: {code}: {error}", file=sys.stderr)
    try:
        _write(frame, args.format, args.output)
    except OSError as exc:
        where = args.output if args.output is not None else "standard output"
        print(
            f"aiomoomoo short-interest: cannot write {where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    return 1 if failures else 0


async def _fetch(
    args: argparse.Namespace, progress: _ProgressLine | None
) -> tuple[pd.DataFrame, dict[str, MoomooError]]:
    async with contextlib.AsyncExitStack() as stack:
        host, port = args.host, args.port
        if args.demo:
            simulator = await stack.enter_async_context(OpenDSimulator(port=0))
            host, port = simulator.host, simulator.port
        client = await stack.enter_async_context(Client(host, port, retries=3))
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


def _write(frame: pd.DataFrame, fmt: str, output: Path | None) -> None:
    if fmt == "parquet":
        assert output is not None
        frame.to_parquet(output, index=False)
        return
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", indent=1) + "\n"
    else:
        text = (frame.to_string(index=False) if len(frame) else "(no rows)") + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")


class _ProgressLine:
    """A one-line progress display on a terminal's stderr, redrawn in place."""

    def __init__(self, stream: io.TextIOBase | Any) -> None:
        self._stream = stream
        self._width = max(40, min(os.get_terminal_size(stream.fileno()).columns, 120))

    def update(self, progress: Progress) -> None:
        done, total = progress.symbols_done, progress.symbols_total
        filled = int(20 * done / total) if total else 20
        bar = "#" * filled + "-" * (20 - filled)
        line = (
            f"[{bar}] {done}/{total} symbols, {progress.pages} pages, {progress.rows} rows"
            f" ({progress.code} {progress.event})"
        )
        self._stream.write("\r" + line[: self._width - 1].ljust(self._width - 1))
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\r" + " " * (self._width - 1) + "\r")
        self._stream.flush()


_SUBCOMMANDS: Final[tuple[Callable[[_SubParsers], Any], ...]] = (
    _add_short_interest_parser,
    _add_simulate_parser,
)
