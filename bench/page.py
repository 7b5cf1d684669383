"""The one reply every benchmark decodes: a 50-row US short-interest page, serialized once.

The rows are the simulator's generated US.AAPL history, so the values (and their varint sizes)
look like OpenD's. ``nextKey`` is the last field of the last field of the body, so a page whose
key has a fixed width is ``prefix + key`` and its SHA-1 is a copy of the prefix's hash state
updated with the key: the lean server builds a fresh page per request for the price of that.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final

from aiomoomoo._proto import Qot_GetShortInterest_pb2
from aiomoomoo.testing import BUILTIN_PROFILES, UsRow, generate_history
from aiomoomoo.testing._simulator import write_row

__all__ = ["CODE", "KEY_WIDTH", "LAST_PAGE_KEY", "ROWS", "KeyedPage", "page_body"]

#: The code every benchmark asks for.
CODE: Final = "US.AAPL"
#: Rows per page: the most OpenD returns.
ROWS: Final = 50
#: Width of the page keys the server hands out; every key has exactly this many characters.
KEY_WIDTH: Final = 10
LAST_PAGE_KEY: Final = "-1"


def page_body(next_key: str) -> bytes:
    """The serialized Qot_GetShortInterest response: ``ROWS`` US rows and ``next_key``."""
    rows = generate_history(CODE, BUILTIN_PROFILES[CODE])[:ROWS]
    if len(rows) < ROWS:
        raise RuntimeError(f"the simulator's {CODE} history has only {len(rows)} rows")
    response = Qot_GetShortInterest_pb2.Response(retType=0)
    s2c = response.s2c
    for row in rows:
        if not isinstance(row, UsRow):
            raise TypeError(f"{CODE} history holds {row!r}, not US rows")
        if None in dataclasses.astuple(row):
            raise ValueError(f"{CODE} row {row!r} lacks a field: the page must be full")
        write_row(s2c.usItemList.add(), row)
    s2c.nextKey = next_key
    return response.SerializeToString()


class KeyedPage:
    """Pages that differ only in a fixed-width ``nextKey``, each built with one short SHA-1 update.

    ``body(n)`` is the page whose key is ``n`` zero-padded to :data:`KEY_WIDTH`; ``digest`` of
    it is the prefix's precomputed hash state, copied and fed the key's bytes.
    """

    __slots__ = ("_prefix", "_prefix_hash")

    def __init__(self) -> None:
        template = page_body("0" * KEY_WIDTH)
        self._prefix = template[:-KEY_WIDTH]
        if page_body("1" * KEY_WIDTH)[:-KEY_WIDTH] != self._prefix:  # pragma: no cover
            raise RuntimeError("nextKey is not the last thing in the page body")
        self._prefix_hash = hashlib.sha1(self._prefix)

    def key(self, n: int) -> bytes:
        return b"%0*d" % (KEY_WIDTH, n)

    def body_and_digest(self, n: int) -> tuple[bytes, bytes]:
        key = self.key(n)
        digest = self._prefix_hash.copy()
        digest.update(key)
        return self._prefix + key, digest.digest()
