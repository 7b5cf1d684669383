"""Every argument check, in one style, and the client's options parsed once into a frozen value.

Each check names the bad value and what is allowed, and raises before anything is sent; bool
is refused where an int is wanted, since ``True`` would otherwise pass as 1. `ClientOptions`
is what `aiomoomoo.Client` made of its keyword arguments (asyncpg style: parsed once, then
immutable), so the session and the client read checked values and never check again.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, Self, TypeVar, cast, overload

from ._security import Security, parse_code

T = TypeVar("T")

__all__ = [
    "CLIENT_TIMEOUT",
    "END_OF_DATA",
    "MAX_NUM",
    "MIN_NUM",
    "ClientOptions",
    "OptionView",
    "check_callback",
    "check_codes",
    "check_concurrency",
    "check_delay",
    "check_host",
    "check_int",
    "check_next_key",
    "check_num",
    "check_port",
    "check_seconds",
    "check_since",
    "check_timeout",
]

END_OF_DATA: Final = "-1"
"""The reply's ``next_key`` when there are no more pages."""


class _ClientTimeout(enum.Enum):
    """The type of `CLIENT_TIMEOUT`."""

    CLIENT_TIMEOUT = "the client's timeout"


CLIENT_TIMEOUT: Final = _ClientTimeout.CLIENT_TIMEOUT
"""The default of the calls' ``timeout=``: use the `Client`'s own ``timeout``."""
MIN_NUM: Final = 1
"""Fewest rows a page may ask for."""
MAX_NUM: Final = 50
"""Most rows a page may ask for."""


def check_num(num: object) -> int | None:
    if num is None:
        return None
    if isinstance(num, bool) or not isinstance(num, int):
        raise TypeError(f"num must be an int from {MIN_NUM} to {MAX_NUM} or None, got {num!r}")
    if not MIN_NUM <= num <= MAX_NUM:
        raise ValueError(f"num must be from {MIN_NUM} to {MAX_NUM}, got {num!r}")
    return num


def check_next_key(next_key: object) -> str | None:
    if next_key is None:
        return None
    if not isinstance(next_key, str):
        raise TypeError(f"next_key must be a str from a previous page or None, got {next_key!r}")
    if next_key == END_OF_DATA:
        raise ValueError("next_key '-1' marks the last page: there is nothing after it")
    if not next_key:
        raise ValueError("next_key '' is not a page key; pass None for the first page")
    return next_key


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def check_seconds(seconds: object, name: str) -> float:
    """A finite number of seconds, zero or more."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {seconds!r}")
    if not 0 <= seconds < math.inf:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {seconds!r}")
    return float(seconds)


def check_int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    """An int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_host(host: object) -> str:
    """OpenD's address: a non-empty str (a name, an IPv4 or an IPv6 address)."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {host!r}")
    if not host:
        raise ValueError("host must not be empty")
    return host


def check_port(port: object) -> int:
    """OpenD's TCP port, 1 to 65535."""
    return check_int(port, "port", low=1, high=65535)


def check_since(since: object) -> dt.date | None:
    if since is None:
        return None
    if isinstance(since, dt.datetime):
        return since.date()
    if isinstance(since, dt.date):
        return since
    if isinstance(since, str):
        try:
            return dt.date.fromisoformat(since)
        except ValueError:
            raise ValueError(f"since {since!r} is not a date in YYYY-MM-DD form") from None
    raise TypeError(f"since must be a datetime.date or a 'YYYY-MM-DD' str, got {since!r}")


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """The checked options of one `aiomoomoo.Client`; `parse` builds it from the raw arguments.

    ``rate_limit``, ``on_event`` and ``rsa_private_key`` are not here: they are objects the client
    turns into a quota, a callback slot and a loaded key.
    """

    host: str
    port: int
    timeout: float | None
    connect_timeout: float
    retries: int
    reconnect_delay: tuple[float, float]
    rate_limit_wait: float
    keepalive_interval: float | None
    client_id: str
    max_body_size: int

    @classmethod
    def parse(
        cls,
        host: object,
        port: object,
        *,
        timeout: object,
        connect_timeout: object,
        retries: object,
        reconnect_delay: object,
        rate_limit_wait: object,
        keepalive_interval: object,
        client_id: object,
        on_event: object,
        max_body_size: object,
    ) -> ClientOptions:
        """Check every argument (``TypeError``/``ValueError`` naming it) and freeze the result.

        ``on_event`` is only checked: the client keeps it where it can be replaced.
        """
        checked_host = check_host(host)
        checked_port = check_port(port)
        checked_timeout = check_timeout(timeout)
        connect_within = check_timeout(connect_timeout, "connect_timeout")
        if connect_within is None:
            raise ValueError("connect_timeout must be a positive number of seconds, not None")
        checked_retries = check_int(retries, "retries", low=0)
        delay = check_delay(reconnect_delay)
        wait = check_seconds(rate_limit_wait, "rate_limit_wait")
        keepalive = check_timeout(keepalive_interval, "keepalive_interval")
        if not isinstance(client_id, str) or not client_id:
            raise TypeError(f"client_id must be a non-empty str, got {client_id!r}")
        check_callback(on_event, "on_event")
        return cls(
            host=checked_host,
            port=checked_port,
            timeout=checked_timeout,
            connect_timeout=connect_within,
            retries=checked_retries,
            reconnect_delay=delay,
            rate_limit_wait=wait,
            keepalive_interval=keepalive,
            client_id=client_id,
            max_body_size=check_int(max_body_size, "max_body_size", low=1),
        )


class _HasOptions(Protocol):
    _options: ClientOptions


class OptionView(Generic[T]):
    """A read-only attribute of the client showing the `ClientOptions` field of its name."""

    __slots__ = ("_name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: _HasOptions, owner: type) -> T: ...
    def __get__(self, obj: _HasOptions | None, owner: type) -> T | Self:
        if obj is None:
            return self
        return cast(T, getattr(obj._options, self._name))

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(f"{self._name} is read-only: pass it to Client() instead")


def check_delay(reconnect_delay: object) -> tuple[float, float]:
    """A ``(first, largest)`` pair of seconds, first not above largest."""
    if not isinstance(reconnect_delay, tuple) or len(reconnect_delay) != 2:
        raise TypeError(
            f"reconnect_delay must be a (first, largest) tuple, got {reconnect_delay!r}"
        )
    first, largest = (check_seconds(v, "reconnect_delay") for v in reconnect_delay)
    if first > largest:
        raise ValueError(f"reconnect_delay must have first <= largest, got {reconnect_delay!r}")
    return first, largest


def check_callback(callback: object, name: str) -> Callable[..., Any] | None:
    """A callable or None."""
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable or None, got {callback!r}")
    return callback


def check_codes(codes: Iterable[str]) -> list[Security]:
    """Parse every code of an iterable (not a lone str), refusing duplicates."""
    if isinstance(codes, str):
        raise TypeError(
            f"codes must be an iterable of codes, not one str {codes!r}; wrap it in a list"
        )
    securities = [parse_code(code) for code in codes]
    seen: set[str] = set()
    for security in securities:
        if security.code in seen:
            raise ValueError(f"code {security.code!r} is listed twice")
        seen.add(security.code)
    return securities


def check_concurrency(concurrency: object) -> int:
    """An int >= 1 (not a bool)."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    return concurrency
