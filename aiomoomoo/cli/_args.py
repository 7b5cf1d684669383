"""Argument types the command line's subcommands share: each turns one string into a value or
raises ``argparse.ArgumentTypeError`` with a message naming the value and what is allowed."""

from __future__ import annotations

import argparse
import datetime as dt

from .._security import parse_code
from ..testing import Quota

__all__ = ["code", "date", "page_size", "port", "positive_int", "quota", "rate_limit"]


def port(text: str) -> int:
    """A TCP port, 0 to 65535."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
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


def page_size(text: str) -> int:
    """Rows per request, 1 to 50."""
    try:
        num = int(text)
    except ValueError:
        num = 0
    if not 1 <= num <= 50:
        raise argparse.ArgumentTypeError(f"num {text!r} is not a whole number from 1 to 50")
    return num


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def quota(text: str) -> Quota:
    """``N/SECONDS`` as the simulator's `Quota`."""
    try:
        return Quota.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rate_limit(text: str) -> tuple[int, float]:
    """``N/SECONDS`` as a client's ``rate_limit=(N, SECONDS)``."""
    parsed = quota(text)
    return parsed.max_requests, parsed.period
