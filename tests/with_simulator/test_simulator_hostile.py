"""A hostile client: the simulator's memory stays bounded and everything it sends gets an answer.

Every test here would have grown the old simulator's memory without bound, killed a connection
with an unhandled exception, or kept a useless connection for ever.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiomoomoo._proto import InitConnect_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._security import Market
from aiomoomoo._wire import MAGIC, ProtoFmt, ProtoId, encode_frame
from aiomoomoo.testing import Faults, Limits, OpenDSimulator, Quota
from aiomoomoo.testing._stats import ACCEPTED_AT_KEPT

from .._fakes import FakeClock
from .conftest import PeerClosed, RawClient, connected, short_interest_request

pytestmark = pytest.mark.anyio


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler ("Unhandled exception", "Task exception
    was never retrieved"); the test fails if anything does."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    gc.collect()  # a task that died unseen reports it when collected
    loop.set_exception_handler(previous)
    assert errors == []


async def eventually_still(read: Any, *, quiet: float = 0.3, limit: float = 20.0) -> Any:
    """Wait until ``read()`` stops changing for ``quiet`` seconds; return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    value, since = read(), loop.time()
    while loop.time() - since < quiet:
        assert loop.time() < deadline, "the value never settled"
        await asyncio.sleep(0.05)
        if (now := read()) != value:
            value, since = now, loop.time()
    return value


# -- back-pressure and what the simulator keeps ------------------------------------------------


async def test_a_client_that_never_reads_stops_being_read() -> None:
    # 20,000 requests of 50 rows is 66 MB of replies: the old simulator buffered every byte.
    limits = Limits(max_pending=64 * 1024)
    async with OpenDSimulator(quota=None, limits=limits) as sim:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        init = InitConnect_pb2.Request()
        init.c2s.clientVer, init.c2s.clientID = 300, "hostile"
        writer.write(encode_frame(ProtoId.INIT_CONNECT, 1, init.SerializeToString()))
        body = short_interest_request(Market.US, "AAPL", num=50).SerializeToString()
        frame = encode_frame(ProtoId.GET_SHORT_INTEREST, 2, body)
        writer.write(frame * 20_000)
        handled = await eventually_still(lambda: sim.stats.requests)
        assert handled < 20_000
        reply_size = 44 + 3500
        assert sim.pending_bytes <= limits.max_pending + 2 * reply_size
        # Reading again lets it go on.
        await reader.readexactly(10 * 1024 * 1024)
        assert await eventually_still(lambda: sim.stats.requests) > handled
        writer.transport.abort()


async def test_stats_keep_what_the_quota_window_needs_and_counters() -> None:
    clock = FakeClock(0.0)
    sim = OpenDSimulator(quota=Quota(5, 1.0), clock=clock)
    handler = sim.handler
    session = handler.open_session()
    handler.login(session)
    body = short_interest_request(Market.HK, "00700", num=1).SerializeToString()
    total = ACCEPTED_AT_KEPT + 2_000
    for serial in range(total):
        clock.advance(0.25)
        handler.handle(session, ProtoId.GET_SHORT_INTEREST, serial, body)
    stats = sim.stats
    assert (stats.requests, stats.accepted, stats.rate_limited) == (total, total, 0)
    assert len(stats.accepted_at) == ACCEPTED_AT_KEPT
    assert stats.accepted_at[-1] == clock.now
    assert stats.accepted_at[0] == clock.now - 0.25 * (ACCEPTED_AT_KEPT - 1)
    assert len(handler._window._times) <= 5


# -- nextKey and other hostile values ----------------------------------------------------------

HOSTILE_KEYS = [
    "@²",  # isdigit() accepts it, int() does not
    "@" + "9" * 5000,  # over int()'s digit limit
    "9" * 5000,
    "-5",
    "1_000",
    "@1_0",
    " 5",
    "5 ",
    "+5",
    "@",
    "@-1",
    "１２３",  # full-width digits  # noqa: RUF001
    "9" * 20,  # more than an int64 timestamp holds
    "\x00",
    "garbage",
]


@pytest.mark.parametrize("next_key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
async def test_every_malformed_next_key_gets_a_failed_reply(
    raw_client: RawClient, next_key: str
) -> None:
    page = await raw_client.short_interest("US.AAPL", next_key=next_key)
    assert page.retType == -1
    assert page.retMsg.startswith("invalid nextKey ")
    assert len(page.retMsg) < 200  # a long key is quoted shortened
    assert (await raw_client.short_interest("US.AAPL", num=1)).retType == 0


async def test_a_next_key_that_is_not_utf8_gets_a_failed_reply(raw_client: RawClient) -> None:
    request = short_interest_request(Market.US, "AAPL", next_key="XXXX")
    body = request.SerializeToString().replace(b"XXXX", b"\xff\xfe@1")
    serial = 77
    raw_client.writer.write(encode_frame(ProtoId.GET_SHORT_INTEREST, serial, body))
    frame = await raw_client.receive()
    page = Qot_GetShortInterest_pb2.Response()
    page.ParseFromString(frame.body)
    assert (frame.serial, page.retType) == (serial, -1)
    assert page.retMsg == "invalid nextKey b'\\xff\\xfe@1': it is not UTF-8 text"
    code = short_interest_request(Market.US, "XXXX").SerializeToString()
    raw_client.writer.write(encode_frame(3249, 78, code.replace(b"XXXX", b"\xff\xfe\xfd\xfc")))
    page.ParseFromString((await raw_client.receive()).body)
    assert (page.retType, page.retMsg) == (-1, "unknown stock")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    proto_id=st.sampled_from([1001, 1002, 1003, 1004, 3249, 0, 2**32 - 1]),
    body=st.binary(max_size=200),
    fmt=st.sampled_from([ProtoFmt.PROTOBUF, ProtoFmt.JSON, 7]),
    logged_in=st.booleans(),
)
# protobuf 4-5's JSON parser raised TypeError on these and killed the handler.
@example(proto_id=1001, body=b"0", fmt=ProtoFmt.JSON, logged_in=False)
@example(proto_id=1001, body=b'{"c2s": 0}', fmt=ProtoFmt.JSON, logged_in=False)
@example(proto_id=3249, body=b'{"c2s": {"security": []}}', fmt=ProtoFmt.JSON, logged_in=True)
def test_the_handler_answers_any_body(
    proto_id: int, body: bytes, fmt: int, logged_in: bool
) -> None:
    sim = OpenDSimulator(quota=Quota(2, 1.0), faults=Faults(wrong_proto_id_every=3))
    handler = sim.handler
    session = handler.open_session()
    if logged_in:
        handler.login(session)
    answer = handler.handle(session, proto_id, 1, body, fmt=fmt)
    assert answer.close is False
    assert len(answer.replies) == 1


# JSON of any shape, in the places of the messages' fields: a number or list where an object
# belongs is what protobuf 4-5's JSON parser did not expect.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_FIELDS = st.sampled_from(
    ["c2s", "security", "market", "code", "nextKey", "num", "clientVer", "clientID", "recvNotify"]
)
_SHAPED = st.recursive(
    _JSON, lambda inner: st.dictionaries(_FIELDS, inner, max_size=4), max_leaves=12
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    proto_id=st.sampled_from([1001, 1004, 3249]),
    value=_SHAPED,
    logged_in=st.booleans(),
)
def test_the_handler_answers_any_json_shape(proto_id: int, value: object, logged_in: bool) -> None:
    sim = OpenDSimulator(quota=None)
    handler = sim.handler
    session = handler.open_session()
    if logged_in:
        handler.login(session)
    body = json.dumps(value).encode("utf-8")
    answer = handler.handle(session, proto_id, 1, body, fmt=ProtoFmt.JSON)
    assert answer.close is False
    assert len(answer.replies) == 1


@settings(max_examples=300, deadline=None)
@given(
    market=st.integers(-(2**31), 2**31 - 1),
    code=st.text(max_size=30),
    next_key=st.none() | st.text(max_size=30) | st.from_regex(r"@?-?[0-9]{1,25}", fullmatch=True),
    num=st.none() | st.integers(-(2**31), 2**31 - 1),
    fmt=st.sampled_from([ProtoFmt.PROTOBUF, ProtoFmt.JSON]),
)
def test_the_handler_answers_any_short_interest_request(
    market: int, code: str, next_key: str | None, num: int | None, fmt: int
) -> None:
    sim = OpenDSimulator(quota=None)
    handler = sim.handler
    session = handler.open_session()
    handler.login(session)
    request = short_interest_request(market, code, next_key=next_key, num=num)
    if fmt == ProtoFmt.JSON:
        body = json_format.MessageToJson(request).encode()
    else:
        body = request.SerializeToString()
    (reply,) = handler.handle(session, 3249, 1, body, fmt=fmt).replies
    page = Qot_GetShortInterest_pb2.Response()
    if fmt == ProtoFmt.JSON:
        json_format.Parse(reply.body.decode(), page)
    else:
        page.ParseFromString(reply.body)
    assert page.retType == 0 or page.retMsg


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def header(proto_id: int, body_len: int, *, fmt: int = 0, magic: bytes = MAGIC) -> bytes:
    return struct.pack("<2sIBBII20s8s", magic, proto_id, fmt, 0, 1, body_len, bytes(20), bytes(8))


def after_init(*frames: bytes) -> bytes:
    init = InitConnect_pb2.Request()
    init.c2s.clientVer, init.c2s.clientID, init.c2s.packetEncAlgo = 300, "hostile", -1
    return encode_frame(ProtoId.INIT_CONNECT, 1, init.SerializeToString()) + b"".join(frames)


def request_bytes(next_key: str, raw_key: bytes | None = None) -> bytes:
    body = short_interest_request(Market.US, "AAPL", next_key=next_key).SerializeToString()
    if raw_key is not None:  # a key that is not UTF-8, which protobuf would not encode
        body = body.replace(next_key.encode(), raw_key)
    return encode_frame(ProtoId.GET_SHORT_INTEREST, 2, body)


HOSTILE_STREAMS = [
    after_init(request_bytes("@²"), request_bytes("@" + "1" * 5000)),
    after_init(request_bytes("XX", b"\xc3\x28")),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    bytes(range(256)) * 4,
    header(1001, 10, magic=b"XX") + bytes(10),
    header(3249, 2**32 - 1) + bytes(1000),
    header(3249, 5) + b"hello",  # SHA-1 mismatch
    encode_frame(1001, 1, b"\xff" * 40),
    encode_frame(1001, 1, b"{not json", fmt=ProtoFmt.JSON),
    encode_frame(1001, 1, b'{"c2s": {"clientVer": "x"}}', fmt=ProtoFmt.JSON),
    encode_frame(1001, 1, b"[" * 10_000, fmt=ProtoFmt.JSON),
    encode_frame(3249, 1, b"\x0a\x02\x08\x0b", fmt=9),
    encode_frame(2**32 - 1, 2**32 - 1, b""),
]


@pytest.mark.parametrize("rsa", [False, True], ids=["plain", "rsa"])
async def test_nothing_a_client_sends_is_an_unhandled_exception(
    rsa: bool,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    rsa_pem: bytes,
) -> None:
    caplog.set_level(logging.INFO)
    options: dict[str, Any] = {"rsa_private_key": rsa_pem} if rsa else {}
    async with OpenDSimulator(quota=None, **options) as sim:
        for data in HOSTILE_STREAMS:
            async with RawClient.connect(sim.host, sim.port) as raw:
                raw.writer.write(data)
                try:
                    while True:
                        await raw.receive(timeout=0.3)
                except (PeerClosed, TimeoutError, Exception):
                    pass
        assert sim.stats.connections == len(HOSTILE_STREAMS)
        assert sim.stats.failed >= 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- limits ------------------------------------------------------------------------------------


async def test_connections_over_the_limit_are_closed_at_once() -> None:
    async with OpenDSimulator(quota=None, limits=Limits(max_connections=2)) as sim:
        async with connected(sim), connected(sim):
            async with RawClient.connect(sim.host, sim.port) as third:
                with pytest.raises(PeerClosed):
                    await third.receive()
            assert sim.stats.refused_connections == 1
            assert sim.connection_count == 2
        async with connected(sim) as again:
            assert (await again.keep_alive()).retType == 0


async def test_a_connection_that_sends_no_init_connect_is_closed() -> None:
    async with OpenDSimulator(limits=Limits(handshake_timeout=0.2)) as sim:
        loop = asyncio.get_running_loop()
        async with RawClient.connect(sim.host, sim.port) as silent:
            started = loop.time()
            with pytest.raises(PeerClosed):
                await silent.receive()
            # uvloop's clock counts whole milliseconds: its timers may fire up to 1 ms early.
            assert loop.time() - started >= 0.2 - 0.002
        async with connected(sim) as greeted:
            await asyncio.sleep(0.4)
            assert (await greeted.keep_alive()).retType == 0


async def test_an_idle_connection_is_closed_and_a_busy_one_is_not() -> None:
    async with OpenDSimulator(limits=Limits(idle_timeout=0.3)) as sim:
        async with connected(sim) as idle, connected(sim) as busy:
            for _ in range(6):
                await asyncio.sleep(0.1)
                assert (await busy.keep_alive()).retType == 0
            with pytest.raises(PeerClosed):
                await idle.receive()
        assert sim.connection_count == 0


async def test_a_frame_over_the_request_limit_is_refused_at_its_header() -> None:
    limits = Limits(max_request_size=1024)
    async with OpenDSimulator(limits=limits) as sim, RawClient.connect(sim.host, sim.port) as raw:
        init = InitConnect_pb2.Request()
        init.c2s.clientVer, init.c2s.clientID = 300, "x" * 900
        assert (
            await raw.request(ProtoId.INIT_CONNECT, init, InitConnect_pb2.Response)
        ).retType == 0
        # A header announcing 15 MiB: closed before any of the body is buffered.
        raw.writer.write(header(ProtoId.GET_SHORT_INTEREST, 15 * 1024 * 1024))
        with pytest.raises(PeerClosed):
            await raw.receive()
