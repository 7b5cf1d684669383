"""The argument checks behind every public call, without a socket: each bound is inclusive where
the docs say so, ``True`` is never a number, and every message names the value and what is
allowed (docs/errors.md)."""

from __future__ import annotations

import math

import pytest

from aiomoomoo._options import (
    check_int,
    check_next_key,
    check_num,
    check_seconds,
    check_timeout,
)


def test_num_takes_1_to_50_and_none() -> None:
    assert check_num(None) is None
    assert check_num(1) == 1
    assert check_num(50) == 50
    for bad in (0, 51, -1):
        with pytest.raises(ValueError, match=rf"^num must be from 1 to 50, got {bad}$"):
            check_num(bad)
    for wrong in (True, 10.0, "10"):
        with pytest.raises(TypeError, match=r"^num must be an int from 1 to 50 or None, got "):
            check_num(wrong)


def test_next_key_refuses_the_end_marker_the_empty_key_and_non_strings() -> None:
    assert check_next_key(None) is None
    assert check_next_key("1700000000") == "1700000000"
    with pytest.raises(ValueError, match=r"^next_key '-1' marks the last page: there is nothing"):
        check_next_key("-1")
    with pytest.raises(ValueError, match=r"^next_key '' is not a page key; pass None for the"):
        check_next_key("")
    with pytest.raises(TypeError, match=r"^next_key must be a str from a previous page or None, "):
        check_next_key(1700000000)


def test_a_timeout_is_a_positive_number_of_seconds_or_none() -> None:
    assert check_timeout(None) is None
    assert check_timeout(3) == 3.0
    assert isinstance(check_timeout(3), float)
    assert check_timeout(1e-9) == 1e-9
    with pytest.raises(ValueError, match=r"^timeout must be a positive number of seconds or None"):
        check_timeout(0)
    with pytest.raises(ValueError, match=r"^connect_timeout must be a positive number"):
        check_timeout(-1, "connect_timeout")
    with pytest.raises(ValueError, match="got nan"):
        check_timeout(math.nan)
    for wrong in (True, "5"):
        with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, got "):
            check_timeout(wrong)


def test_seconds_are_finite_and_may_be_zero() -> None:
    assert check_seconds(0, "rate_limit_wait") == 0.0
    assert isinstance(check_seconds(0, "rate_limit_wait"), float)
    assert check_seconds(2.5, "rate_limit_wait") == 2.5
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(
            ValueError, match=r"^rate_limit_wait must be a finite number of seconds >= 0, got "
        ):
            check_seconds(bad, "rate_limit_wait")
    for wrong in (False, None, "1"):
        with pytest.raises(TypeError, match=r"^reconnect_delay must be a number of seconds, got "):
            check_seconds(wrong, "reconnect_delay")


def test_an_int_check_includes_both_bounds() -> None:
    assert check_int(1, "port", low=1, high=65535) == 1
    assert check_int(65535, "port", low=1, high=65535) == 65535
    assert check_int(0, "retries", low=0) == 0
    assert check_int(10**9, "retries", low=0) == 10**9
    with pytest.raises(ValueError, match=r"^port must be from 1 to 65535, got 0$"):
        check_int(0, "port", low=1, high=65535)
    with pytest.raises(ValueError, match=r"^port must be from 1 to 65535, got 65536$"):
        check_int(65536, "port", low=1, high=65535)
    with pytest.raises(ValueError, match=r"^retries must be >= 0, got -1$"):
        check_int(-1, "retries", low=0)
    for wrong in (True, 3.0, "3"):
        with pytest.raises(TypeError, match=r"^retries must be an int, got "):
            check_int(wrong, "retries", low=0)
