"""The session without sockets: connections over a fake transport, replies fed by hand.

Each test opens "connections" from a list the session is given in place of TCP, so it can see
exactly which requests were written to which connection, and when.
"""

from __future__ import annotations

import asyncio
import gc

import aiolimiter
import pytest

from aiomoomoo import (
    Client,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    SlidingWindowLimiter,
)
from aiomoomoo._connection import Connection, ConnectionInfo
from aiomoomoo._messages import decode_short_interest
from aiomoomoo._options import ClientOptions
from aiomoomoo._proto import KeepAlive_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._rate_limit import Limiter, adapt_rate_limit
from aiomoomoo._rows import ShortInterestReply
from aiomoomoo._session import Session
from aiomoomoo._wire import Frame, FrameDecoder, ProtoId, encode_frame

from ._fakes import FakeClock, attach

pytestmark = pytest.mark.anyio

OK = Qot_GetShortInterest_pb2.Response(retType=0).SerializeToString()
RATE_LIMITED = Qot_GetShortInterest_pb2.Response(
    retType=-1,
    retMsg="Get Short Interest is too frequent, request failed, no more than 30 times every 30 "
    "seconds.",
).SerializeToString()
KEEPALIVE_OK = KeepAlive_pb2.Response(retType=0, s2c=KeepAlive_pb2.S2C(time=1)).SerializeToString()


class Peer:
    """One fake connection: what the client wrote to it, and a way to answer."""

    def __init__(self) -> None:
        self.connection = Connection("fake:1", max_body_size=1 << 20)
        self.transport = attach(self.connection)
        self.connection.info = ConnectionInfo(1, 1011, 1, keepalive_interval=10.0)
        self.answered: set[int] = set()

    def requests(self) -> list[Frame]:
        frames = FrameDecoder().feed(bytes(self.transport.sent))
        return [f for f in frames if f.proto_id == ProtoId.GET_SHORT_INTEREST]

    def answer_all(self, body: bytes = OK) -> None:
        for frame in self.requests():
            if frame.serial not in self.answered:
                self.answered.add(frame.serial)
                self.connection.data_received(encode_frame(frame.proto_id, frame.serial, body))

    def answer_keepalives(self) -> None:
        for frame in FrameDecoder().feed(bytes(self.transport.sent)):
            if frame.proto_id == ProtoId.KEEP_ALIVE and frame.serial not in self.answered:
                self.answered.add(frame.serial)
                reply = encode_frame(ProtoId.KEEP_ALIVE, frame.serial, KEEPALIVE_OK)
                self.connection.data_received(reply)


def session_over(
    peers: list[Peer],
    *,
    retries: int = 3,
    limiter: Limiter | None = None,
    rate_limit_wait: float = 0.0,
) -> Session:
    """A session whose connects take ``peers`` in turn, then fail with `ConnectError`."""
    options = ClientOptions.parse(
        "fake",
        1,
        timeout=None,
        connect_timeout=1.0,
        retries=retries,
        reconnect_delay=(0.0, 0.0),
        rate_limit_wait=rate_limit_wait,
        keepalive_interval=None,
        client_id="test",
        on_event=None,
        max_body_size=1 << 20,
    )
    session = Session(
        options,
        limiter=limiter if limiter is not None else adapt_rate_limit(None),
        rsa_key=None,
        on_event=None,
        describe=lambda: "<test client>",
    )
    pool = iter(peers)

    async def fake_open() -> Connection:
        peer = next(pool, None)
        if peer is None:
            raise ConnectError("cannot connect to fake:1: no peer left")
        return peer.connection

    session._open = fake_open  # type: ignore[method-assign]
    return session


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def read(session: Session) -> asyncio.Task[ShortInterestReply]:
    return asyncio.ensure_future(
        session.request(ProtoId.GET_SHORT_INTEREST, b"", decode_short_interest, None)
    )


async def test_resends_after_a_drop_probe_with_one_request_then_widen() -> None:
    first, second = Peer(), Peer()
    session = session_over([first, second])
    await session.connect()
    tasks = [read(session) for _ in range(6)]
    await settle()
    assert len(first.requests()) == 6  # a fresh client sends everything at once
    first.connection.abort(ConnectionLostError("dropped"))
    await settle()
    assert len(second.requests()) == 1  # one probe on the new connection
    widths = []
    while not all(task.done() for task in tasks):
        sent = len(second.requests())
        second.answer_all()
        await settle()
        widths.append(len(second.requests()) - sent)
    assert widths == [2, 3, 0]  # one more in flight for every reply
    assert all(task.result().ret_type == 0 for task in tasks)
    assert session.reconnects == 1
    await session.close()


async def test_several_in_flight_are_resent_free_and_a_lone_one_is_charged() -> None:
    peers = [Peer() for _ in range(3)]
    session = session_over(peers, retries=1)
    await session.connect()
    tasks = [read(session) for _ in range(2)]
    await settle()
    peers[0].connection.abort(ConnectionLostError("dropped with two in flight"))
    await settle()
    assert len(peers[1].requests()) == 1  # the probe
    peers[1].connection.abort(ConnectionLostError("dropped with the probe alone"))
    await settle()
    assert len(peers[2].requests()) == 1
    for _ in range(2):
        peers[2].answer_all()
        await settle()
    # The probe was dropped twice, charged once (alone), free once (with company): within
    # retries=1 both requests complete, where charging every drop would have failed it.
    assert all(task.result().ret_type == 0 for task in tasks)
    await session.close()


async def test_a_lone_request_dropped_more_than_retries_times_fails() -> None:
    peers = [Peer() for _ in range(3)]
    session = session_over(peers, retries=1)
    await session.connect()
    task = read(session)
    for peer in peers[:2]:
        await settle()
        assert len(peer.requests()) == 1
        peer.connection.abort(ConnectionLostError("dropped"))
    with pytest.raises(ConnectionLostError, match="dropped"):
        await task
    await session.close()


async def test_a_request_that_never_left_is_resent_even_without_retries() -> None:
    first, second = Peer(), Peer()
    session = session_over([first, second], retries=0)
    await session.connect()
    first.connection.pause_writing()
    task = read(session)
    await settle()
    first.connection.abort(ConnectionLostError("dropped before the write"))
    await settle()
    assert first.requests() == []
    second.answer_all()
    await settle()
    assert task.result().ret_type == 0
    await session.close()


async def test_a_request_alone_in_flight_at_a_drop_is_charged_even_beside_a_keepalive() -> None:
    peers = [Peer() for _ in range(3)]
    session = session_over(peers, retries=1)
    await session.connect()
    task = read(session)
    for peer in peers[:2]:
        await settle()
        assert len(peer.requests()) == 1
        # A KeepAlive waits for its reply too, but it is no request to share the blame with.
        peer.connection.send_keepalive()
        peer.connection.abort(ConnectionLostError("dropped with one request in flight"))
    # Charged twice, past retries=1: counted with the KeepAlive, each drop would be free.
    with pytest.raises(ConnectionLostError, match="dropped with one request"):
        await task
    assert peers[2].requests() == []
    await session.close()


async def test_one_keepalive_answered_does_not_widen_the_window_after_a_drop() -> None:
    first, second = Peer(), Peer()
    session = session_over([first, second])
    await session.connect()
    tasks = [read(session) for _ in range(2)]
    await settle()
    first.connection.abort(ConnectionLostError("dropped"))
    await settle()
    assert len(second.requests()) == 1  # the probe, unanswered
    # One KeepAlive answered after the probe was sent proves nothing about it (a gateway may
    # answer a KeepAlive while a request is still being processed): the window stays at one.
    second.connection.send_keepalive()
    await settle()
    second.answer_keepalives()
    await settle()
    assert len(second.requests()) == 1
    # A second one answered shows OpenD went past the probe: the others may go.
    second.connection.send_keepalive()
    await settle()
    second.answer_keepalives()
    await settle()
    assert len(second.requests()) == 2
    second.answer_all()
    await settle()
    assert all(task.result().ret_type == 0 for task in tasks)
    await session.close()


async def test_a_slot_granted_to_a_request_that_found_no_connection_goes_back() -> None:
    limiter = SlidingWindowLimiter(1, 30.0)
    session = session_over([], retries=0, limiter=limiter)
    with pytest.raises(ConnectError, match="no peer left"):
        await read(session)
    # Never sent, so never counted: the next request may go at once, not 30 s later.
    assert (limiter.granted, limiter.has_capacity()) == (0, True)
    await session.close()


async def test_a_slot_granted_to_a_request_dropped_before_its_write_goes_back() -> None:
    limiter = SlidingWindowLimiter(1, 30.0)
    first, second = Peer(), Peer()
    session = session_over([first, second], retries=0, limiter=limiter)
    await session.connect()
    first.connection.pause_writing()
    task = read(session)
    await settle()
    assert limiter.granted == 1
    first.connection.abort(ConnectionLostError("dropped before the write"))
    await settle()
    # The unsent slot came back, so the resend got it at once: a slot kept would hold the
    # only one of the window for ever (never sent, it is never released either).
    assert len(second.requests()) == 1
    second.answer_all()
    await settle()
    assert task.result().ret_type == 0
    assert limiter.granted == 1  # one request reached OpenD: counted once


async def test_opends_rate_limit_pauses_do_not_spend_the_requests_timeout(
    clock: FakeClock,
) -> None:
    peer = Peer()
    session = session_over([peer], rate_limit_wait=60.0)
    await session.connect()
    task = asyncio.ensure_future(
        session.request(ProtoId.GET_SHORT_INTEREST, b"", decode_short_interest, 1.5)
    )
    # Refused twice: pauses of 1 s (a slot's share of 30 per 30 s) then 2 s, twice the 1.5 s
    # the request may take; the time OpenD's quota holds it is not the request's.
    for pause in (1.0, 2.0):
        await settle()
        peer.answer_all(RATE_LIMITED)
        await clock.run_for(pause)
    await settle()
    assert len(peer.requests()) == 3
    peer.answer_all()
    await settle()
    assert task.result().ret_type == 0
    await session.close()


async def test_every_limiter_grants_a_slot_that_is_released_or_given_back() -> None:
    # The session speaks to every limiter through grant() and the slot's release()/give_back().
    limiter = SlidingWindowLimiter(1, 30.0)
    slot = await limiter.grant()
    assert (limiter.granted, limiter.has_capacity()) == (1, False)
    slot.give_back()  # never sent: as if never granted
    assert (limiter.granted, limiter.has_capacity()) == (0, True)
    slot = await limiter.grant()
    slot.release()  # OpenD is past it: the slot cools down for the period from now
    assert (limiter.granted, limiter.has_capacity()) == (1, False)
    assert "in_flight=0 recent=1" in repr(limiter)
    for other in (adapt_rate_limit(None), adapt_rate_limit(aiolimiter.AsyncLimiter(1, 30))):
        assert not isinstance(other, SlidingWindowLimiter)
        free = await other.grant()
        free.release()
        free.give_back()


def test_the_session_reads_the_clients_options_object_itself() -> None:
    client = Client("127.0.0.1", 4000, retries=2, reconnect_delay=(0.5, 2.0))
    session = client._session
    assert session.options is client._options
    assert session.address == "127.0.0.1:4000"
    assert (session.policy.retries, session.policy.first, session.policy.largest) == (2, 0.5, 2.0)


def test_errors_name_the_client_without_keeping_it_alive() -> None:
    client = Client("127.0.0.1", 4000)
    session = client._session
    assert session._describe() == "the Client for 127.0.0.1:4000"
    del client
    gc.collect()
    assert session._describe() == "a collected Client"
    session.abandon()
    with pytest.raises(ClientClosedError, match=r"^a collected Client is closed; create a new"):
        session._check_open()
