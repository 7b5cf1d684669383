"""The ``aiomoomoo`` command line: ``short-interest``, ``simulate`` and the store's commands.

Each command is one ``add_parser(subparsers)`` function, in the module of its group, that builds
its parser and binds its runner with ``set_defaults(run=...)``; `COMMANDS` lists them. Adding a
command means writing one such function and listing it there. The pieces they share live
beside: argument types (`_args`, the library's own checks), the OpenD options and connection
(`_gateway`), files and pipes (`_output`), the terminal view (`_terminal`), the table options
(`_tables`) and the one progress display (`_progress`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

from .. import __version__
from .._errors import StoreError
from . import _doctor, _fetch, _screens, _simulate, _store
from ._output import print_error
from ._terminal import reset_hint

__all__ = ["COMMANDS", "main"]

_Runner: TypeAlias = Callable[[argparse.Namespace], int]
_AddParser: TypeAlias = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

#: Every command, as the function that adds its parser, in the order ``--help`` lists them.
COMMANDS: Final[tuple[_AddParser, ...]] = (
    _fetch.add_parser,
    _simulate.add_parser,
    *_store.COMMANDS,
    *_screens.COMMANDS,
    _doctor.add_parser,
)


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
    reset_hint()
    run: _Runner = args.run
    try:
        return run(args)
    except StoreError as exc:
        # A store file that cannot be used (missing, not a store, damaged, busy, of another
        # format), wherever a command opened it: one line, never a traceback.
        print_error(str(args.command), str(exc))
        return 1


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
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", dest="command", required=True
    )
    for add_parser in COMMANDS:
        add_parser(subparsers)
    return parser
