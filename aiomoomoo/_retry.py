"""The retry policy: when to reconnect, how much a new connection carries, who pays for a drop.

Pure state and arithmetic, no sockets and no clock of its own, so every rule is tested with
plain numbers (``tests/test_retry.py``); `aiomoomoo._session` feeds it what happened.

- **Back-off over the whole connect cycle.** Every connection that ends before it proved itself
  (it served a reply, or lived ``proven_after`` seconds), and every failed connect, lengthens
  the pause before the next attempt: ``first`` doubling up to ``largest``, times a jitter in
  [0.5, 1]. Only a proven connection resets it, so a gateway that accepts and then hangs up
  cannot make the client reconnect in a tight loop.
- **A round of attempts.** A loss starts a round; requests waiting for a connection give up with
  `ConnectError` after ``retries + 1`` attempts of the round failed (the connect failed, or the
  connection dropped before proving itself with nobody in flight to blame).
- **Blame.** A drop is charged only to the request that was alone in flight when it happened,
  on a connection that had served no reply; other drops cost none of them a retry. After a drop
  the next connection carries one request at a time, and one more for every reply (TCP's slow
  start), so a request that keeps killing the connection is soon the first one sent on a fresh
  connection and is charged, while healthy requests around it are resent for free.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Final

__all__ = ["PROVEN_AFTER", "RetryPolicy"]

#: Seconds a connection must live, without serving a reply, to count as having proved itself.
PROVEN_AFTER: Final = 10.0
#: Once this many requests may be in flight, the slow start is over: the window opens fully.
_OPEN_WINDOW: Final = 64
_MIN_DOUBLING: Final = 0.01


def _jitter() -> float:
    return random.uniform(0.5, 1.0)


class RetryPolicy:
    """Back-off, blame and slow start for one client's connections (see the module docstring).

    ``retries`` is how many drops one request may be blamed for before it fails (0: a request is
    never resent); ``first`` and ``largest`` bound the reconnect pause; ``jitter`` returns the
    factor each pause is multiplied by.
    """

    __slots__ = (
        "_in_round",
        "_round",
        "_streak",
        "first",
        "jitter",
        "largest",
        "proven_after",
        "retries",
        "window",
    )

    def __init__(
        self,
        *,
        retries: int,
        first: float,
        largest: float,
        proven_after: float = PROVEN_AFTER,
        jitter: Callable[[], float] = _jitter,
    ) -> None:
        self.retries = retries
        self.first = first
        self.largest = largest
        self.proven_after = proven_after
        self.jitter = jitter
        self._streak = 0  # unproven cycles in a row: drives the pause
        self._round = 0  # unblamed failures in the current round: bounds waiting requests
        self._in_round = False  # whether the current connection came from a round's attempt
        self.window: float = math.inf
        """How many requests may be in flight on the current connection."""

    def __repr__(self) -> str:
        return (
            f"<RetryPolicy retries={self.retries} streak={self._streak} round={self._round} "
            f"window={self.window:g}>"
        )

    # -- back-off ---------------------------------------------------------------------------

    def pause(self) -> float:
        """Seconds to wait before the next connect attempt (0 after a proven connection)."""
        if self._streak == 0:
            return 0.0
        delay = self.first
        for _ in range(min(self._streak - 1, 64)):
            delay = min(max(delay * 2, _MIN_DOUBLING), self.largest)
        return delay * self.jitter()

    def is_proven(self, replies: int, age: float) -> bool:
        """Whether a connection that served ``replies`` and lived ``age`` s proved itself."""
        return replies > 0 or age >= self.proven_after

    def attempting(self) -> None:
        """A connect attempt of a round starts; its connection's fate counts for the round."""
        self._in_round = True

    def connect_failed(self) -> None:
        self._streak += 1
        self._round += 1

    def round_exhausted(self) -> bool:
        """Whether requests waiting for a connection should give up now."""
        return self._round > self.retries

    def end_round(self) -> None:
        """Start counting a new round (the back-off itself keeps growing)."""
        self._round = 0
        self._in_round = False

    # -- a connection's life ----------------------------------------------------------------

    def replied(self) -> None:
        """A request got its reply: the connection proved itself; widen the window."""
        self._streak = 0
        self._round = 0
        self._in_round = False
        self.window = math.inf if self.window + 1 >= _OPEN_WINDOW else self.window + 1

    @staticmethod
    def blames(in_flight: int, served: int = 0) -> bool:
        """Whether a drop is charged: only to a request alone in flight on a connection that
        had ``served`` no reply.

        Alone is no proof of guilt on a connection that served others: the client's limiter
        spaces requests out, so under a gateway that drops every k-th request each victim is
        alone. A request that kills the connection every time is soon the first one sent on a
        fresh connection (the window after a drop is one), and is charged there.
        """
        return in_flight == 1 and served == 0

    def lost(self, *, proven: bool, in_flight: int) -> None:
        """The connection ended with ``in_flight`` requests waiting for their replies."""
        blamed = self.blames(in_flight)
        if proven:
            self._streak = 0
            self._round = 0
            self._in_round = False
        else:
            self._streak += 1
            if self._in_round and not blamed:
                self._round += 1
        self.window = 1

    def may_resend(self, charges: int) -> bool:
        """Whether a request blamed for ``charges`` drops so far may be sent again."""
        return self.retries > 0 and charges <= self.retries
