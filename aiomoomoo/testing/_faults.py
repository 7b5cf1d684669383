"""Misbehaviour the simulator can inject, so clients can be tested against a gateway's bad day.

Message-level faults (which reply, when, or none at all) are applied by the request handler and
so reach every transport; stream-level faults (how the bytes of a reply are cut up on a TCP
stream) are applied by the TCP transport only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(slots=True)
class Faults:
    """Misbehaviour to inject; change the attributes at any time, they apply to the next frame.

    - ``drop_after``: answer this many short-interest requests on a connection, then close the
      connection when the next one arrives, leaving it unanswered.
    - ``reply_delay`` / ``reply_jitter``: hold each reply this many seconds, plus a seeded random
      extra of up to ``reply_jitter``.
    - ``split_writes``: send replies in writes of at most this many bytes, yielding between them.
    - ``reorder_window``: collect the replies ready within this many seconds and send them in one
      write, newest first.
    - ``push_every``: before every N-th short-interest reply, push a Notify (1003) that reuses the
      request's serial number.
    - ``answer_keepalive``: set to False to leave KeepAlives unanswered.
    """

    drop_after: int | None = None
    reply_delay: float = 0.0
    reply_jitter: float = 0.0
    split_writes: int | None = None
    reorder_window: float | None = None
    push_every: int | None = None
    answer_keepalive: bool = True
