"""The client's options, parsed once: checked values, frozen, and shown read-only by the client."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiolimiter
import pytest

from aiomoomoo import Client, SlidingWindowLimiter
from aiomoomoo._options import ClientOptions

DEFAULTS: dict[str, Any] = {
    "timeout": 12,
    "connect_timeout": 10,
    "retries": 3,
    "reconnect_delay": (0.1, 5),
    "rate_limit_wait": 60,
    "keepalive_interval": None,
    "client_id": "aiomoomoo",
    "on_event": None,
    "max_body_size": 1024,
}


def test_options_are_parsed_into_checked_floats_and_frozen() -> None:
    options = ClientOptions.parse("127.0.0.1", 11111, **DEFAULTS)
    assert options.timeout == 12.0
    assert type(options.timeout) is float
    assert options.connect_timeout == 10.0
    assert type(options.connect_timeout) is float
    assert options.reconnect_delay == (0.1, 5.0)
    assert type(options.reconnect_delay[1]) is float
    assert options.rate_limit_wait == 60.0
    assert type(options.rate_limit_wait) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.timeout = 1.0  # type: ignore[misc]


def test_parse_refuses_as_the_client_does() -> None:
    with pytest.raises(TypeError, match="retries must be an int, got True"):
        ClientOptions.parse("127.0.0.1", 11111, **{**DEFAULTS, "retries": True})
    with pytest.raises(TypeError, match="on_event must be callable or None, got 42"):
        ClientOptions.parse("127.0.0.1", 11111, **{**DEFAULTS, "on_event": 42})


def test_the_client_shows_its_options_and_they_cannot_be_changed_behind_the_session() -> None:
    client = Client("localhost", 4000, timeout=3, retries=0, reconnect_delay=(0, 1))
    assert (client.host, client.port, client.timeout, client.retries) == ("localhost", 4000, 3, 0)
    assert client.reconnect_delay == (0.0, 1.0)
    assert client._options.max_body_size == client.max_body_size
    # Before: assigning worked but the session kept the old value (timeout alone took effect).
    with pytest.raises(AttributeError, match="retries is read-only"):
        client.retries = 5
    with pytest.raises(AttributeError, match="timeout is read-only"):
        client.timeout = 1.0
    assert client.retries == 0
    assert client.timeout == 3.0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"port": 0}, ValueError, "port must be from 1 to 65535, got 0"),
        ({"port": "11111"}, TypeError, "port must be an int, got '11111'"),
        ({"host": ""}, ValueError, "host must not be empty"),
        ({"host": 1}, TypeError, "host must be a str, got 1"),
        ({"retries": -1}, ValueError, "retries must be >= 0, got -1"),
        ({"retries": True}, TypeError, "retries must be an int, got True"),
        ({"reconnect_delay": 5}, TypeError, "reconnect_delay must be a \\(first, largest\\) tuple"),
        ({"rate_limit_wait": -5}, ValueError, "rate_limit_wait must be a finite number"),
        ({"rate_limit_wait": "x"}, TypeError, "rate_limit_wait must be a number of seconds"),
        ({"connect_timeout": None}, ValueError, "connect_timeout must be a positive number"),
        ({"client_id": 123}, TypeError, "client_id must be a non-empty str, got 123"),
        ({"on_event": 42}, TypeError, "on_event must be callable or None, got 42"),
        ({"max_body_size": 0}, ValueError, "max_body_size must be >= 1, got 0"),
        ({"rate_limit": asyncio.Semaphore(2)}, TypeError, "needs release\\(\\)"),
        ({"reconnect_delay": (1.0, 0.5)}, ValueError, r"got \(1.0, 0.5\)"),
        ({"timeout": -1}, ValueError, "timeout must be a positive number"),
        ({"rate_limit": "30/30"}, TypeError, "rate_limit must be"),
        ({"rate_limit": (0, 30)}, ValueError, "max_requests must be at least 1"),
        ({"keepalive_interval": 0}, ValueError, "keepalive_interval must be a positive number"),
    ],
)
def test_bad_client_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"host": "127.0.0.1", "port": 11111, **options}
    with pytest.raises(error, match=message):
        Client(**arguments)


def test_rate_limiter_is_the_limiter_the_user_configured() -> None:
    shared = aiolimiter.AsyncLimiter(30, 30)
    assert Client(rate_limit=shared).rate_limiter is shared
    assert Client(rate_limit=None).rate_limiter is None
    built = Client(rate_limit=(5, 2.0)).rate_limiter
    assert isinstance(built, SlidingWindowLimiter)
    assert (built.max_requests, built.period) == (5, 2.0)
