"""The simulator's sans-IO handler (`aiomoomoo.testing._handler`): request bodies in, replies out.

No socket, no framing, no event loop: each test hands `RequestHandler.handle` a body and reads the
`Answer`. Requests are built and replies read with the generated protobuf classes only, not with
the client's message layer, so the simulator stays an independent oracle for the client.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomoomoo._proto import (
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo._wire import ProtoFmt, ProtoId
from aiomoomoo.testing import Faults, Quota, UsRow
from aiomoomoo.testing._handler import Answer, RequestHandler, Session
from aiomoomoo.testing._universe import Universe

from ._fakes import FakeClock

SI = ProtoId.GET_SHORT_INTEREST
M = TypeVar("M", bound=Message)


def us_rows(count: int) -> list[UsRow]:
    """``count`` US rows, newest first, a day apart, share counts 1, 2, 3, ..."""
    first = dt.date(2026, 4, 30)
    return [
        UsRow(
            timestamp=1_777_000_000 - n * 86_400,
            timestamp_str=(first - dt.timedelta(days=n)).isoformat(),
            shares_short=n + 1,
            short_percent=1.5,
            avg_daily_share_volume=1000,
            days_to_cover=None if n == 1 else 2.0,
            close_price=10.0,
            last_close_price=9.5,
        )
        for n in range(count)
    ]


def handler(*, rows: int = 23, **kwargs: object) -> RequestHandler:
    universe = Universe()
    universe.add_symbol("US.TEST", rows=us_rows(rows))
    return RequestHandler(universe, **kwargs)  # type: ignore[arg-type]


def init_connect_body(**c2s: object) -> bytes:
    fields: dict[str, object] = {"clientVer": 300, "clientID": "test", "recvNotify": True}
    fields.update(c2s)
    return InitConnect_pb2.Request(c2s=InitConnect_pb2.C2S(**fields)).SerializeToString()  # type: ignore[arg-type]


def page_body(
    code: str = "TEST", *, market: int = 11, next_key: str | None = None, num: int | None = None
) -> bytes:
    request = Qot_GetShortInterest_pb2.Request()
    request.c2s.security.market, request.c2s.security.code = market, code
    if next_key is not None:
        request.c2s.nextKey = next_key
    if num is not None:
        request.c2s.num = num
    return request.SerializeToString()


def logged_in(sim: RequestHandler) -> Session:
    session = sim.open_session()
    answer = sim.handle(session, ProtoId.INIT_CONNECT, 1, init_connect_body())
    assert InitConnect_pb2.Response.FromString(answer.replies[0].body).retType == 0
    return session


def only_reply(answer: Answer, message_type: type[M]) -> M:
    assert len(answer.replies) == 1, answer
    return message_type.FromString(answer.replies[0].body)


def page(sim: RequestHandler, session: Session, **kwargs: Any) -> Qot_GetShortInterest_pb2.Response:
    answer = sim.handle(session, SI, 7, page_body(**kwargs))
    return only_reply(answer, Qot_GetShortInterest_pb2.Response)


# -- the handshake ---------------------------------------------------------------------------


def test_init_connect_gives_the_session_its_connection_id() -> None:
    sim = handler(seed=3)
    session = sim.open_session()
    assert (sim.stats.connections, session.conn_id) == (1, 0)
    answer = sim.handle(session, ProtoId.INIT_CONNECT, 41, init_connect_body())
    assert (answer.delay, answer.close) == (0.0, False)
    [reply] = answer.replies
    assert (reply.proto_id, reply.serial, reply.fmt) == (ProtoId.INIT_CONNECT, 41, 0)
    s2c = InitConnect_pb2.Response.FromString(reply.body).s2c
    assert s2c.connID == session.conn_id != 0
    assert (s2c.serverVer, s2c.loginUserID, s2c.keepAliveInterval) == (1011, 10_000_003, 10)
    assert len(s2c.connAESKey) == 16
    assert session.aes_key is None  # no RSA, so no AES either


def test_every_request_before_init_connect_is_refused() -> None:
    sim = handler()
    session = sim.open_session()
    for proto_id, body in ((SI, page_body()), (ProtoId.KEEP_ALIVE, b"")):
        reply = only_reply(sim.handle(session, proto_id, 2, body), KeepAlive_pb2.Response)
        assert (reply.retType, reply.retMsg) == (-1, "InitConnect must come first")
    assert (sim.stats.requests, sim.stats.failed) == (0, 2)


def test_encryption_is_refused_when_no_rsa_key_is_configured() -> None:
    sim = handler()
    session = sim.open_session()
    answer = sim.handle(session, ProtoId.INIT_CONNECT, 1, init_connect_body(packetEncAlgo=2))
    reply = only_reply(answer, InitConnect_pb2.Response)
    assert reply.retType == -1
    assert "not configured for encryption" in reply.retMsg
    assert session.conn_id == 0


def test_keepalive_and_global_state_are_answered() -> None:
    sim = handler()
    session = logged_in(sim)
    keepalive = KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=1)).SerializeToString()
    assert (
        only_reply(
            sim.handle(session, ProtoId.KEEP_ALIVE, 3, keepalive), KeepAlive_pb2.Response
        ).retType
        == 0
    )
    assert sim.stats.keepalives == 1
    body = GetGlobalState_pb2.Request(c2s=GetGlobalState_pb2.C2S(userID=1)).SerializeToString()
    state = only_reply(
        sim.handle(session, ProtoId.GET_GLOBAL_STATE, 4, body), GetGlobalState_pb2.Response
    )
    assert (state.retType, state.s2c.connID, state.s2c.qotLogined) == (0, session.conn_id, True)


def test_an_unknown_proto_id_gets_a_failure_naming_what_is_served() -> None:
    sim = handler()
    reply = only_reply(sim.handle(logged_in(sim), 2999, 5, b""), KeepAlive_pb2.Response)
    assert (reply.retType, reply.errCode) == (-1, 4)
    assert "proto id 2999 is not supported" in reply.retMsg


# -- short interest --------------------------------------------------------------------------


def test_a_walk_gets_every_row_once_newest_first_and_ends_at_minus_one() -> None:
    sim = handler(rows=23)
    session = logged_in(sim)
    shares: list[int] = []
    keys: list[str] = []
    key: str | None = None
    while key != "-1":
        reply = page(sim, session, next_key=key, num=10)
        assert reply.retType == 0
        shares += [item.sharesShort for item in reply.s2c.usItemList]
        assert not reply.s2c.hkItemList
        key = reply.s2c.nextKey
        keys.append(key)
    assert shares == list(range(1, 24))
    assert len(set(keys)) == 3
    assert keys[-1] == "-1"
    assert (sim.stats.requests, sim.stats.accepted, session.short_interest_count) == (3, 3, 3)


def test_rows_carry_what_was_given_and_leave_out_what_is_none() -> None:
    sim = handler(rows=2)
    items = page(sim, logged_in(sim)).s2c.usItemList
    assert items[0].timestampStr == "2026-04-30"
    assert (items[0].sharesShort, items[0].daysToCover, items[0].closePrice) == (1, 2.0, 10.0)
    assert items[0].HasField("daysToCover")
    assert not items[1].HasField("daysToCover")


def test_without_num_a_page_holds_ten_rows() -> None:
    sim = handler(rows=23)
    assert len(page(sim, logged_in(sim)).s2c.usItemList) == 10


@pytest.mark.parametrize(
    ("kwargs", "err_code", "text"),
    [
        ({"num": 0}, 1, "num must be between 1 and 50, got 0"),
        ({"num": 51}, 1, "num must be between 1 and 50, got 51"),
        ({"market": 21}, 1, "HK and US securities only, not market 21"),
        ({"code": "NOPE"}, 2, "unknown stock"),
        ({"next_key": "nonsense"}, 1, "invalid nextKey 'nonsense'"),
    ],
)
def test_a_bad_short_interest_request_gets_a_failure(
    kwargs: dict[str, Any], err_code: int, text: str
) -> None:
    sim = handler()
    reply = page(sim, logged_in(sim), **kwargs)
    assert (reply.retType, reply.errCode) == (-1, err_code)
    assert text in reply.retMsg
    assert not reply.s2c.usItemList


def test_the_quota_refuses_in_opends_words_until_the_window_moves_on() -> None:
    clock = FakeClock(100.0)
    sim = handler(quota=Quota(2, 10.0), clock=clock)
    session = logged_in(sim)
    assert [page(sim, session).retType for _ in range(2)] == [0, 0]
    refused = page(sim, session)
    assert (refused.retType, refused.errCode) == (-1, 3)
    assert "no more than 2 times every 10 seconds" in refused.retMsg
    clock.advance(9.9)
    assert page(sim, session).retType == -1
    clock.advance(0.1)
    assert page(sim, session).retType == 0
    assert (sim.stats.rate_limited, sim.stats.accepted_at) == (2, [100.0, 100.0, 110.0])


def test_a_json_request_gets_a_json_reply() -> None:
    sim = handler()
    session = logged_in(sim)
    request = Qot_GetShortInterest_pb2.Request.FromString(page_body(num=2))
    body = json_format.MessageToJson(request).encode()
    [reply] = sim.handle(session, SI, 9, body, fmt=ProtoFmt.JSON).replies
    assert reply.fmt == ProtoFmt.JSON
    parsed = json_format.Parse(reply.body.decode(), Qot_GetShortInterest_pb2.Response())
    assert [item.sharesShort for item in parsed.s2c.usItemList] == [1, 2]


@settings(max_examples=200, deadline=None)
@given(
    proto_id=st.sampled_from([ProtoId.INIT_CONNECT, ProtoId.KEEP_ALIVE, 1002, SI, 1]),
    body=st.binary(max_size=40),
    fmt=st.sampled_from([ProtoFmt.PROTOBUF, ProtoFmt.JSON]),
)
def test_nothing_a_client_sends_makes_the_handler_raise(
    proto_id: int, body: bytes, fmt: int
) -> None:
    sim = handler()
    session = logged_in(sim)
    answer = sim.handle(session, proto_id, 11, body, fmt=fmt)
    assert not answer.close
    assert [reply.serial for reply in answer.replies] == [11]


# -- message-level faults --------------------------------------------------------------------


def test_drop_after_closes_without_a_reply() -> None:
    sim = handler(faults=Faults(drop_after=1))
    session = logged_in(sim)
    assert page(sim, session).retType == 0
    answer = sim.handle(session, SI, 8, page_body())
    assert (answer.replies, answer.close) == ([], True)
    assert sim.stats.dropped == 1


def test_a_poisoned_code_closes_without_a_reply() -> None:
    sim = handler(faults=Faults(poison_codes=frozenset({"US.TEST"})))
    answer = sim.handle(logged_in(sim), SI, 8, page_body())
    assert (answer.replies, answer.close) == ([], True)


def test_a_silent_gateway_answers_nothing_and_keeps_the_connection() -> None:
    sim = handler()
    session = logged_in(sim)
    sim.faults = Faults(silent=True)
    assert sim.handle(session, SI, 8, page_body()) == Answer()


def test_unanswered_keepalives_are_counted_but_get_no_reply() -> None:
    sim = handler(faults=Faults(answer_keepalive=False))
    session = logged_in(sim)
    assert sim.handle(session, ProtoId.KEEP_ALIVE, 8, b"") == Answer()
    assert sim.stats.keepalives == 1


def test_close_after_init_connect_sends_the_reply_then_closes() -> None:
    sim = handler(faults=Faults(close_after_init_connect=True))
    answer = sim.handle(sim.open_session(), ProtoId.INIT_CONNECT, 1, init_connect_body())
    assert answer.close
    assert InitConnect_pb2.Response.FromString(answer.replies[0].body).retType == 0


def test_pushes_and_wrong_proto_ids_come_on_every_nth_reply() -> None:
    sim = handler(faults=Faults(push_every=2, wrong_proto_id_every=3, reply_delay=0.25))
    session = logged_in(sim)
    answers = [sim.handle(session, SI, serial, page_body()) for serial in range(1, 7)]
    assert [[r.proto_id for r in a.replies] for a in answers] == [
        [SI],
        [ProtoId.NOTIFY, SI],
        [ProtoId.KEEP_ALIVE],
        [ProtoId.NOTIFY, SI],
        [SI],
        [ProtoId.NOTIFY, ProtoId.KEEP_ALIVE],
    ]
    push = answers[1].replies[0]
    assert push.serial == 2
    assert Notify_pb2.Response.FromString(push.body).s2c.event.desc == "simulated push"
    assert {a.delay for a in answers} == {0.25}
    assert sim.stats.pushes == 3


def test_refuse_every_refuses_in_rate_limit_words_whatever_the_quota() -> None:
    sim = handler(quota=None, faults=Faults(refuse_every=2))
    session = logged_in(sim)
    replies = [page(sim, session) for _ in range(4)]
    assert [r.errCode if r.retType else 0 for r in replies] == [0, 3, 0, 3]
    assert "no more than 30 times every 30 seconds" in replies[1].retMsg


def test_a_logged_out_gateway_says_so_and_refuses_short_interest() -> None:
    sim = handler(faults=Faults(logged_out=True))
    session = logged_in(sim)
    body = GetGlobalState_pb2.Request(c2s=GetGlobalState_pb2.C2S(userID=0)).SerializeToString()
    state = only_reply(
        sim.handle(session, ProtoId.GET_GLOBAL_STATE, 4, body), GetGlobalState_pb2.Response
    )
    assert (state.retType, state.s2c.qotLogined) == (0, False)
    refused = page(sim, session)
    assert (refused.retType != 0, refused.retMsg) == (True, "quote server is not logged in")
    sim.faults.logged_out = False
    assert page(sim, session).retType == 0
