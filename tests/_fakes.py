"""Stand-ins the pure tests share: a transport that records writes, a clock that moves only when
told to, InitConnect replies and short-interest replies built from protobuf rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from unittest import mock

from aiomoomoo._messages import decode_short_interest
from aiomoomoo._proto import InitConnect_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._rows import Rows, ShortInterestReply
from aiomoomoo._security import Market


class FakeTransport:
    """What a connection wrote (``sent``) and whether it dropped the socket (``aborted``).

    Like uvloop's transports it does not subclass ``asyncio.Transport``: the connection takes any
    object with ``write``, ``abort`` and ``close``. `attach` hands one to a connection.
    """

    def __init__(self) -> None:
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


def attach(protocol: asyncio.BaseProtocol, transport: FakeTransport | None = None) -> FakeTransport:
    """``transport`` (a new `FakeTransport` by default) made ``protocol``'s, as the event loop
    makes a socket's."""
    transport = FakeTransport() if transport is None else transport
    protocol.connection_made(cast(asyncio.BaseTransport, transport))
    return transport


async def settle(rounds: int = 12) -> None:
    """Let every callback and task that is ready run, and those they make ready, and so on."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """A clock that stands still until a test moves it: the one fake clock of the suite.

    Calling it reads it, so a simulator takes it as ``clock=``; `on_loop` makes it the running
    event loop's ``time()``, so timers fire at exact instants and nothing sleeps for real (the
    way aiolimiter's tests control time). `advance` moves it at once; `run_for` and `run_until`
    also let what is ready run before the move and everything that became due run after it.
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def run_for(self, seconds: float) -> None:
        await settle()
        self.now += seconds
        await settle()

    async def run_until(self, when: float) -> None:
        assert when >= self.now, f"the clock is at {self.now}, past {when}"
        await self.run_for(when - self.now)

    @contextmanager
    def on_loop(self) -> Iterator[FakeClock]:
        """Stand in for the running loop's clock while the block runs."""
        with mock.patch.object(asyncio.get_running_loop(), "time", self.time):
            yield self


def accepted_init_connect(key: str, iv: str | None) -> bytes:
    """An accepted InitConnect reply body naming AES ``key`` (and ``iv`` for CBC), conn id 42."""
    reply = InitConnect_pb2.Response(retType=0)
    s2c = reply.s2c
    s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 1, 42
    s2c.connAESKey, s2c.keepAliveInterval = key, 10
    if iv is not None:
        s2c.aesCBCiv = iv
    return reply.SerializeToString()


def short_interest_body(
    us: Iterable[Any] = (), hk: Iterable[Any] = (), *, next_key: str | None = "-1"
) -> bytes:
    """A successful 3249 reply body holding protobuf rows ``us`` and ``hk`` (no nextKey: None)."""
    reply = Qot_GetShortInterest_pb2.Response(retType=0)
    reply.s2c.usItemList.extend(us)
    reply.s2c.hkItemList.extend(hk)
    if next_key is not None:
        reply.s2c.nextKey = next_key
    return reply.SerializeToString()


def decoded(us: Iterable[Any] = (), hk: Iterable[Any] = (), **kwargs: Any) -> ShortInterestReply:
    """The message layer's reading of `short_interest_body`."""
    return decode_short_interest(short_interest_body(us, hk, **kwargs))


def rows_of(market: Market, items: Iterable[Any]) -> Rows:
    """Protobuf rows of ``market`` as the message layer hands them up."""
    items = list(items)
    reply = decoded(items) if market is Market.US else decoded(hk=items)
    return reply.rows(market)
