"""Argument types: each turns one string into a value, or raises ``argparse.ArgumentTypeError``
(a usage error: exit status 2, one line) naming the value and what is allowed.

The checks are the library's own (`aiomoomoo._options`, the limiter's window check), so a value
the client would refuse is refused here, before anything is sent, in the same words.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from typing import TYPE_CHECKING

from .._options import (
    MAX_NUM,
    MIN_NUM,
    check_concurrency,
    check_host,
    check_num,
    check_port,
)
from .._rate_limit import adapt_rate_limit
from .._security import parse_code

if TYPE_CHECKING:
    from ..testing import Quota

__all__ = [
    "as_of",
    "bind_port",
    "code",
    "concurrency",
    "date",
    "host",
    "page_size",
    "port",
    "positive_seconds",
    "quota",
    "rate_limit",
]


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def host(text: str) -> str:
    """OpenD's address; an IPv6 address may come in brackets (``[::1]``)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return check_host(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port(text: str) -> int:
    """OpenD's port, as `aiomoomoo.Client` accepts it (1 to 65535)."""
    number = _whole(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a whole number")
    try:
        return check_port(number)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0, such as 5 or 0.5, got {text!r}"
        )
    return value


def bind_port(text: str) -> int:
    """A port to listen on, 0 to 65535 (0: the system picks a free one)."""
    number = _whole(text)
    if number is None or not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number from 0 to 65535")
    return number


def code(text: str) -> str:
    """A short-interest code, ``US.<symbol>`` or ``HK.<symbol>``."""
    try:
        return parse_code(text).code
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def date(text: str) -> dt.date:
    """A date as ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r} is not YYYY-MM-DD") from None


def as_of(text: str) -> dt.datetime:
    """An instant with a timezone, ISO 8601 (``2026-05-01T00:00Z``)."""
    example = "e.g. 2026-05-01T00:00Z"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--as-of {text!r} is not an ISO time, {example}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} needs a timezone, {example}")
    return moment


def page_size(text: str) -> int:
    """Rows per request, as the client's ``num=`` accepts them."""
    number = _whole(text)
    try:
        checked = check_num(number)
    except (TypeError, ValueError):
        checked = None
    if checked is None:
        raise argparse.ArgumentTypeError(
            f"num {text!r} is not a whole number from {MIN_NUM} to {MAX_NUM}"
        )
    return checked


def concurrency(text: str) -> int:
    """Codes fetched at once, as `fetch_short_interest_many` accepts them."""
    try:
        return check_concurrency(_whole(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1") from None


def wait(text: str) -> float:
    """Seconds a store's write waits for another program, as `ShortInterestStore` takes them."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"wait {text!r} is not a number of seconds of at least 0")
    return seconds


def _window(text: str) -> tuple[int, float]:
    count, slash, seconds = text.partition("/")
    try:
        if not slash:
            raise ValueError
        return int(count), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"quota {text!r} is not N/SECONDS, for example 30/30"
        ) from None


def rate_limit(text: str) -> tuple[int, float]:
    """``N/SECONDS`` as a client's ``rate_limit=(N, SECONDS)``, checked as the client does."""
    window = _window(text)
    try:
        adapt_rate_limit(window)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"rate limit {text!r}: {exc}") from None
    return window


def quota(text: str) -> Quota:
    """``N/SECONDS`` as the simulator's `aiomoomoo.testing.Quota` (``simulate`` only: it is
    the one place besides ``--demo`` that loads the simulator)."""
    from ..testing import Quota

    try:
        return Quota.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
