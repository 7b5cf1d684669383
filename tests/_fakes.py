"""Stand-ins the pure tests share: a transport that records writes, and InitConnect replies."""

from __future__ import annotations

import asyncio
from typing import Any

from aiomoomoo._proto import InitConnect_pb2


class FakeTransport(asyncio.Transport):
    """What a connection wrote (``sent``) and whether it dropped the socket (``aborted``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.aborted = False

    def write(self, data: Any) -> None:
        self.sent += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def accepted_init_connect(key: str, iv: str | None) -> bytes:
    """An accepted InitConnect reply body naming AES ``key`` (and ``iv`` for CBC), conn id 42."""
    reply = InitConnect_pb2.Response(retType=0)
    s2c = reply.s2c
    s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 1, 42
    s2c.connAESKey, s2c.keepAliveInterval = key, 10
    if iv is not None:
        s2c.aesCBCiv = iv
    return reply.SerializeToString()
