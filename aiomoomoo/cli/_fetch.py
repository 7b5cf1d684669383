"""``aiomoomoo short-interest``: fetch histories from OpenD and show or write them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Final

import pandas as pd

from .._errors import FetchManyError, MoomooError
from . import _args
from ._gateway import GATEWAY_OPTIONS, connected_client, explain
from ._output import INTERRUPTED, print_error
from ._progress import ProgressDisplay, progress_on, ticking
from ._tables import add_output_options, output_problem, write_table

__all__ = ["add_parser"]

_COMMAND: Final = "short-interest"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``short-interest`` to the command line."""
    parser = subparsers.add_parser(
        _COMMAND,
        parents=[GATEWAY_OPTIONS],
        help="fetch short-interest histories and write them out",
        description=(
            "Fetch the short-interest history of each CODE (US.<symbol> or HK.<symbol>) from "
            "OpenD, concurrently and within its quota. On a terminal each market gets its own "
            "table showing the newest rows of each code (--all for every row); piped or written "
            "with -o, every row goes out as one table with a leading code column."
        ),
    )
    parser.add_argument(
        "codes", nargs="+", metavar="CODE", type=_args.code, help="e.g. US.AAPL HK.00700"
    )
    parser.add_argument(
        "--since", type=_args.date, metavar="YYYY-MM-DD", help="only rows from this trading date on"
    )
    parser.add_argument(
        "--num", type=_args.page_size, default=50, help="rows per request, 1 to 50 (default 50)"
    )
    add_output_options(parser)
    parser.add_argument(
        "--concurrency",
        type=_args.concurrency,
        metavar="N",
        default=4,
        help="symbols fetched at once (default 4)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    duplicate = next((c for i, c in enumerate(args.codes) if c in args.codes[:i]), None)
    if duplicate is not None:
        print_error(_COMMAND, f"code {duplicate!r} is listed twice")
        return 2
    problem = output_problem(args)
    if problem is not None:
        print_error(_COMMAND, problem[0])
        return problem[1]
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # The display is gone before any message, so that none is drawn over.
    try:
        with progress_on(sys.stderr, len(args.codes)) as display:
            frame, failures = asyncio.run(_fetch(args, display))
    except MoomooError as exc:
        print_error(_COMMAND, explain(exc, _COMMAND, args))
        return 1
    except KeyboardInterrupt:
        print_error(_COMMAND, "interrupted: nothing written")
        return INTERRUPTED
    for code, error in failures.items():
        print_error(_COMMAND, f"{code}: {error}")
    status = write_table(_COMMAND, frame, args)
    return status or (1 if failures else 0)


async def _fetch(
    args: argparse.Namespace, display: ProgressDisplay | None
) -> tuple[pd.DataFrame, dict[str, MoomooError]]:
    async with connected_client(args) as client:
        if display is not None:
            display.watch(client)
        with ticking(display):
            try:
                frame = await client.fetch_short_interest_many(
                    args.codes,
                    since=args.since,
                    num=args.num,
                    concurrency=args.concurrency,
                    on_progress=display.fetched if display is not None else None,
                )
            except FetchManyError as exc:
                return exc.frame, exc.failures
        return frame, {}
