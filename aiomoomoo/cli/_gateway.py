"""Where the commands that talk to OpenD find it: the options they share, the client they open,
and the line that says what to do when it cannot be reached.

`GATEWAY_OPTIONS` is an argparse parent parser: ``--host``, ``--port``, ``--rate-limit`` and
``--demo`` are declared once for every command that fetches.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from .._client import Client
from .._errors import ConnectError, MoomooError
from . import _args

__all__ = ["DEFAULT_RATE_LIMIT", "GATEWAY_OPTIONS", "address", "connected_client", "explain"]

#: OpenD's own quota for short interest: 30 requests in any 30 s.
DEFAULT_RATE_LIMIT: Final = "30/30"


def _gateway_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("OpenD")
    group.add_argument(
        "--host", type=_args.host, default="127.0.0.1", help="OpenD's address (default %(default)s)"
    )
    group.add_argument(
        "--port", type=_args.port, default=11111, help="OpenD's port (default %(default)s)"
    )
    group.add_argument(
        "--rate-limit",
        type=_args.rate_limit,
        default=DEFAULT_RATE_LIMIT,
        metavar="N/SECONDS",
        help="at most N requests in any SECONDS (default 30/30, OpenD's quota)",
    )
    group.add_argument(
        "--demo",
        action="store_true",
        help="ask the simulator built into aiomoomoo instead of an OpenD",
    )
    return parser


#: The parent parser of every command that talks to OpenD.
GATEWAY_OPTIONS: Final = _gateway_options()


def address(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:11111``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.asynccontextmanager
async def connected_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A client on the OpenD that ``args`` names, or on a simulator started here (``--demo``)
    that enforces the same quota the client keeps, as OpenD would."""
    async with contextlib.AsyncExitStack() as stack:
        host, port = args.host, args.port
        if args.demo:
            # Only --demo (and simulate) load the simulator.
            from ..testing import OpenDSimulator, Quota

            simulator = await stack.enter_async_context(
                OpenDSimulator(port=0, quota=Quota(*args.rate_limit))
            )
            host, port = simulator.host, simulator.port
        yield await stack.enter_async_context(
            Client(host, port, retries=3, rate_limit=args.rate_limit)
        )


def explain(exc: MoomooError, command: str, args: argparse.Namespace) -> str:
    """The one line a failed run prints: for an OpenD that cannot be reached, what to do,
    naming this command's ``--demo``; otherwise the error itself."""
    cause = exc.__cause__
    if isinstance(exc, ConnectError) and isinstance(cause, OSError):
        return (
            f"cannot connect to OpenD at {address(args.host, args.port)}: "
            f"{cause.strerror or cause}. Is OpenD running and logged in? Start it, or try "
            f"`aiomoomoo {command} --demo` for the built-in simulator"
        )
    return str(exc)
