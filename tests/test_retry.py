"""The retry policy without sockets: the back-off schedule, its reset rule, blame, slow start."""

from __future__ import annotations

import math

import pytest

from aiomoomoo._retry import PROVEN_AFTER, RetryPolicy


def policy(retries: int = 3, first: float = 0.1, largest: float = 5.0) -> RetryPolicy:
    return RetryPolicy(retries=retries, first=first, largest=largest, jitter=lambda: 1.0)


def test_the_pause_doubles_from_first_to_largest_exactly() -> None:
    retry = policy()
    assert retry.pause() == 0.0  # the first attempt after a proven connection goes at once
    pauses = []
    for _ in range(9):
        retry.connect_failed()
        pauses.append(retry.pause())
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_the_pause_from_zero_still_grows() -> None:
    retry = policy(first=0.0, largest=1.0)
    retry.connect_failed()
    assert retry.pause() == 0.0
    retry.connect_failed()
    retry.connect_failed()
    assert retry.pause() == pytest.approx(0.02)


def test_jitter_scales_each_pause() -> None:
    retry = RetryPolicy(retries=3, first=1.0, largest=8.0, jitter=lambda: 0.5)
    retry.connect_failed()
    retry.connect_failed()
    assert retry.pause() == pytest.approx(1.0)
    default = RetryPolicy(retries=3, first=1.0, largest=8.0)
    default.connect_failed()
    assert all(0.5 <= default.pause() <= 1.0 for _ in range(50))


def test_an_unproven_connection_lengthens_the_pause_like_a_failed_connect() -> None:
    retry = policy()
    for expected in (0.1, 0.2, 0.4):
        retry.lost(proven=False, in_flight=0)
        assert retry.pause() == pytest.approx(expected)


def test_only_a_proven_connection_resets_the_back_off() -> None:
    retry = policy()
    for _ in range(4):
        retry.lost(proven=False, in_flight=0)
    assert retry.pause() == pytest.approx(0.8)
    retry.lost(proven=True, in_flight=0)
    assert retry.pause() == 0.0
    for _ in range(3):
        retry.connect_failed()
    retry.replied()
    assert retry.pause() == 0.0


def test_a_connection_proves_itself_by_a_reply_or_by_living_a_while() -> None:
    retry = policy()
    assert not retry.is_proven(replies=0, age=PROVEN_AFTER - 0.01)
    assert retry.is_proven(replies=0, age=PROVEN_AFTER)
    assert retry.is_proven(replies=1, age=0.0)


def test_a_round_ends_after_retries_plus_one_failures_nobody_is_blamed_for() -> None:
    retry = policy(retries=2)
    retry.lost(proven=False, in_flight=0)  # the loss that starts the round is not an attempt
    assert not retry.round_exhausted()
    retry.attempting()
    retry.connect_failed()
    retry.attempting()
    retry.lost(proven=False, in_flight=0)
    assert not retry.round_exhausted()
    retry.attempting()
    retry.lost(proven=False, in_flight=3)
    assert retry.round_exhausted()
    retry.end_round()
    assert not retry.round_exhausted()
    assert retry.pause() == pytest.approx(0.8)  # the back-off goes on across rounds


def test_a_drop_blamed_on_a_lone_request_does_not_count_against_the_round() -> None:
    retry = policy(retries=1)
    for _ in range(5):
        retry.attempting()
        retry.lost(proven=False, in_flight=1)
    assert not retry.round_exhausted()
    assert retry.pause() > 0  # but it still backs off


def test_only_a_request_alone_in_flight_is_blamed() -> None:
    assert RetryPolicy.blames(1)
    assert not RetryPolicy.blames(0)
    assert not RetryPolicy.blames(2)
    assert not RetryPolicy.blames(16)


@pytest.mark.parametrize(("retries", "allowed"), [(0, 0), (1, 1), (3, 3)])
def test_a_request_may_be_blamed_retries_times(retries: int, allowed: int) -> None:
    retry = policy(retries=retries)
    assert [retry.may_resend(charges) for charges in range(5)] == [
        charges <= allowed and retries > 0 for charges in range(5)
    ]


def test_retries_zero_never_resends_even_unblamed() -> None:
    assert not policy(retries=0).may_resend(0)


def test_slow_start_after_a_drop_widens_one_per_reply_then_opens() -> None:
    retry = policy()
    assert retry.window == math.inf
    retry.lost(proven=True, in_flight=5)
    assert retry.window == 1
    widths = []
    for _ in range(64):
        retry.replied()
        widths.append(retry.window)
    assert widths[:4] == [2, 3, 4, 5]
    assert widths[-1] == math.inf
    retry.lost(proven=True, in_flight=0)
    assert retry.window == 1


def test_a_lone_request_is_not_blamed_on_a_connection_that_served_others() -> None:
    # Under a paced limiter every request is alone in flight; a drop after replies is no proof.
    assert RetryPolicy.blames(1, 0)
    assert not RetryPolicy.blames(1, 1)
    assert not RetryPolicy.blames(1, 40)
