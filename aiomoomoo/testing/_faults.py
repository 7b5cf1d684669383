"""Misbehaviour the simulator can inject, so clients can be tested against a gateway's bad day.

Message-level faults (which reply, when, or none at all) are applied by the request handler and
so reach every transport; stream-level faults (how the bytes of a reply travel on a TCP stream:
split, trickled, corrupted) are applied by the TCP transport only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from ._stats import Quota

__all__ = ["Faults"]


@dataclass(slots=True)
class Faults:
    """Misbehaviour to inject; change the attributes at any time, they apply to the next frame.

    Message-level, on every transport:

    - ``drop_after``: answer this many short-interest requests on a connection, then close the
      connection when the next one arrives, leaving it unanswered.
    - ``reply_delay`` / ``reply_jitter``: hold each reply this many seconds, plus a seeded random
      extra of up to ``reply_jitter``.
    - ``reorder_window``: collect the replies ready within this many seconds and send them in one
      write, newest first.
    - ``push_every``: before every N-th short-interest reply, push a Notify (1003) that reuses the
      request's serial number.
    - ``answer_keepalive``: set to False to leave KeepAlives unanswered.
    - ``silent``: read every request and answer none, the socket left open: a hung gateway.
    - ``close_after_init_connect``: answer InitConnect, then close the connection.
    - ``poison_codes``: a short-interest request for one of these codes (``"US.AAPL"``) closes
      the connection unanswered, as a gateway crashing on one symbol would.
    - ``wrong_proto_id_every``: every N-th short-interest reply on a connection comes back under
      KeepAlive's proto id (1004) instead of 3249.
    - ``refuse_every``: refuse every N-th short-interest request the simulator receives, in
      OpenD's rate-limit wording, whatever the quota says.
    - ``strict_quota``: enforce this quota as well as the announced one, refusing in OpenD's
      wording with the announced quota's figures: a gateway stricter than it says.
    - ``logged_out``: an OpenD that is running but not logged in to the quote server:
      GetGlobalState says so and every short-interest request is refused.

    Stream-level, on TCP only:

    - ``split_writes``: send replies in writes of at most this many bytes, yielding between them.
    - ``trickle``: send replies in writes of ``split_writes`` bytes (1 if unset), this many
      seconds apart: a peer that trickles.
    - ``corrupt_every``: every N-th short-interest reply on a connection carries a wrong SHA-1,
      as a corrupted frame would.
    """

    drop_after: int | None = None
    reply_delay: float = 0.0
    reply_jitter: float = 0.0
    split_writes: int | None = None
    reorder_window: float | None = None
    push_every: int | None = None
    answer_keepalive: bool = True
    silent: bool = False
    close_after_init_connect: bool = False
    poison_codes: Collection[str] = field(default_factory=frozenset)
    wrong_proto_id_every: int | None = None
    refuse_every: int | None = None
    strict_quota: Quota | None = None
    trickle: float | None = None
    corrupt_every: int | None = None
    logged_out: bool = False

    def __post_init__(self) -> None:
        for name in (
            "drop_after",
            "split_writes",
            "push_every",
            "wrong_proto_id_every",
            "refuse_every",
            "corrupt_every",
        ):
            value = getattr(self, name)
            least = 0 if name == "drop_after" else 1
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < least
            ):
                raise ValueError(
                    f"Faults.{name} must be None or a whole number >= {least}, got {value!r}"
                )
        for name in ("reply_delay", "reply_jitter", "reorder_window", "trickle"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < float("inf"):
                raise ValueError(
                    f"Faults.{name} must be a finite number of seconds >= 0, got {value!r}"
                )
        if isinstance(self.poison_codes, str):
            raise TypeError("Faults.poison_codes must be a collection of codes, not one string")
