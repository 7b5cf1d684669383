"""``aiomoomoo doctor``: is OpenD there, talking, logged in and serving short interest?

Four checks, each run only when the one before passed, as each needs what the one before proved:
the port accepts a TCP connection; InitConnect completes (server version, connection id,
encryption); GetGlobalState says the quote server is logged in; one short-interest request is
answered. A failed check says what was seen and what to do about it. `diagnose` returns the
checklist, so a program (or a test) can read it without the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .._client import Client
from .._errors import (
    ConnectError,
    ConnectionLostError,
    MoomooError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from . import _args
from ._gateway import address

__all__ = ["Check", "add_parser", "diagnose", "render"]

#: The code the short-interest check asks for: one page of one row.
DEFAULT_CODE: Final = "US.AAPL"
_DEFAULT_TIMEOUT: Final = 5.0
_PORT, _INIT, _STATE, _REQUEST = (
    "port reachable",
    "InitConnect",
    "logged in (GetGlobalState)",
    "short interest (3249)",
)
_WRONG_PORT: Final = (
    "check --port: it must be OpenD's API port (api_port in OpenD.xml, 11111 by default), "
    "not its WebSocket port (33333) or another program's"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist: ``passed`` is None when the check did not run."""

    name: str
    passed: bool | None
    detail: str
    advice: str = ""


async def diagnose(
    host: str,
    port: int,
    *,
    rsa_private_key: str | os.PathLike[str] | bytes | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    code: str = DEFAULT_CODE,
) -> list[Check]:
    """Run the four checks against the OpenD at ``host:port``; return them in order.

    ``rsa_private_key`` is OpenD's key when it encrypts; ``timeout`` bounds each step;
    ``code`` is the security the short-interest request asks for.
    """
    where = address(host, port)
    checks = [await _reach(host, port, where, timeout)]
    if checks[0].passed:
        checks += await _talk(host, port, where, rsa_private_key, timeout, code)
    skipped = Check("", None, "not run: an earlier check failed")
    for name in (_PORT, _INIT, _STATE, _REQUEST)[len(checks) :]:
        checks.append(Check(name, skipped.passed, skipped.detail))
    return checks


async def _reach(host: str, port: int, where: str, timeout: float) -> Check:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return Check(
            _PORT,
            False,
            f"no answer from {where} within {timeout:g} s",
            "a firewall drops the connection, or the host is wrong: check --host and --port",
        )
    except OSError as exc:
        return Check(
            _PORT,
            False,
            f"nothing listening on {where}: {exc.strerror or exc}",
            f"start OpenD and log it in, or {_WRONG_PORT}",
        )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Check(_PORT, True, f"{where} accepts connections")


async def _talk(
    host: str,
    port: int,
    where: str,
    rsa_private_key: str | os.PathLike[str] | bytes | None,
    timeout: float,
    code: str,
) -> list[Check]:
    """InitConnect, GetGlobalState and one request, over one client."""
    try:
        client = Client(
            host,
            port,
            rate_limit=None,
            timeout=timeout,
            connect_timeout=timeout,
            retries=0,
            rate_limit_wait=0.0,
            rsa_private_key=rsa_private_key,
        )
    except (ValueError, ImportError) as exc:
        return [Check(_INIT, False, f"cannot use the RSA key: {exc}", "pass OpenD's own key")]
    try:
        await client.connect()
    except ConnectError as exc:
        return [_init_failed(exc, encrypting=rsa_private_key is not None)]
    async with client:
        info = client.connection_info
        assert info is not None
        checks = [
            Check(
                _INIT,
                True,
                f"server version {info.server_version}, connection id {info.conn_id}, "
                f"encryption {info.encryption}",
            )
        ]
        checks.append(await _state(client))
        if checks[-1].passed:
            checks.append(await _request(client, code))
        return checks


def _init_failed(exc: ConnectError, *, encrypting: bool) -> Check:
    cause = exc.__cause__
    detail = str(exc)
    key_advice = (
        "check that --rsa-private-key is the key OpenD is configured with (rsa_private_key in "
        "OpenD.xml)"
        if encrypting
        else "if OpenD is configured with an RSA key (rsa_private_key in OpenD.xml), pass the "
        "same key with --rsa-private-key FILE"
    )
    if isinstance(cause, ServerError):
        text = cause.ret_msg.lower()
        if "encrypt" in text or "rsa" in text:
            return Check(_INIT, False, detail, f"OpenD expects encryption: {key_advice}")
        return Check(_INIT, False, detail, "read OpenD's message above and its log")
    if isinstance(cause, ProtocolError):
        advice = f"this peer does not speak OpenD's protocol: {_WRONG_PORT}"
        return Check(_INIT, False, detail, advice)
    if isinstance(cause, ConnectionLostError):
        return Check(_INIT, False, detail, f"the peer hung up on InitConnect: {key_advice}")
    return Check(
        _INIT,
        False,
        detail,
        f"the port accepts connections but InitConnect got no answer: {_WRONG_PORT}; or OpenD "
        f"hangs (restart it); or {key_advice}",
    )


async def _state(client: Client) -> Check:
    try:
        state = await client.get_global_state()
    except MoomooError as exc:
        return Check(_STATE, False, str(exc), "OpenD did not answer GetGlobalState: restart it")
    markets = ", ".join(f"{m} {state.markets[m]}" for m in ("US", "HK"))
    detail = f"markets {markets}; OpenD build {state.server_build}"
    if state.program_status:
        detail += f", status {state.program_status}"
    if not state.quote_logged_in:
        return Check(
            _STATE,
            False,
            f"OpenD is not logged in to the quote server ({detail})",
            "log OpenD in to your moomoo account (in its window, or with -login_account and "
            "-login_pwd), then run doctor again",
        )
    return Check(_STATE, True, f"logged in; {detail}")


async def _request(client: Client, code: str) -> Check:
    try:
        page = await client.get_short_interest(code, num=1)
    except RateLimitError as exc:
        return Check(
            _REQUEST,
            False,
            f"refused for quota: {exc.ret_msg}",
            "another program uses this account's short-interest quota (OpenD allows 30 "
            "requests in any 30 s): wait for it, or give every program one shared limiter",
        )
    except RequestTimeoutError as exc:
        return Check(_REQUEST, False, str(exc), "OpenD took too long: try a longer --timeout")
    except ServerError as exc:
        return Check(
            _REQUEST,
            False,
            f"refused: {exc.ret_msg}",
            "check the account's market-data permissions for short interest in OpenD",
        )
    except MoomooError as exc:
        return Check(_REQUEST, False, str(exc), "run doctor again; if it persists, restart OpenD")
    frame = page.frame
    newest = f"newest row {frame['timestamp_str'].iloc[0]}" if len(frame) else "no rows"
    return Check(_REQUEST, True, f"{code} answered ({newest})")


_MARKS: Final = {True: "[ok]  ", False: "[FAIL]", None: "[skip]"}


def render(checks: Sequence[Check]) -> str:
    """The checklist as text: one line per check, and what to do under a failed one."""
    lines = []
    for check in checks:
        lines.append(f"{_MARKS[check.passed]} {check.name}: {check.detail}")
        if check.advice:
            lines.append(f"       -> {check.advice}")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``aiomoomoo doctor``: check an OpenD end to end and say what to fix."""
    parser = subparsers.add_parser(
        "doctor",
        help="check that OpenD is reachable, logged in and serving short interest",
        description="Reach OpenD's port, complete InitConnect, ask GetGlobalState and make one "
        "short-interest request; print a checklist with what to do for each failure. Exits 0 "
        "only when every check passes.",
    )
    parser.add_argument(
        "--host", type=_args.host, default="127.0.0.1", help="OpenD's address (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=_args.port, default=11111, help="OpenD's port (default %(default)s)"
    )
    parser.add_argument(
        "--rsa-private-key",
        metavar="FILE",
        help="OpenD's RSA private key (PEM), when it is configured to encrypt",
    )
    parser.add_argument(
        "--timeout",
        type=_args.positive_seconds,
        default=_DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long each step may take (default %(default)s)",
    )
    parser.add_argument(
        "--code",
        type=_args.code,
        default=DEFAULT_CODE,
        help="the security the short-interest check asks for (default %(default)s)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    checks = asyncio.run(
        diagnose(
            args.host,
            args.port,
            rsa_private_key=args.rsa_private_key,
            timeout=args.timeout,
            code=args.code,
        )
    )
    print(render(checks))
    passed = all(check.passed for check in checks)
    print("all checks passed" if passed else "some checks failed", file=sys.stderr)
    return 0 if passed else 1
