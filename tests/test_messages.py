"""The message layer: malformed replies are ProtocolErrors, failures the right ServerError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomoomoo import ProtocolError, RateLimitError, ServerError, UnknownSecurityError
from aiomoomoo._messages import (
    GatewayEvent,
    check_ret,
    decode_global_state,
    decode_init_connect,
    decode_keepalive,
    decode_short_interest,
    global_state,
    init_connect_aes_key,
    init_connect_request,
    init_reply,
    parse_notify,
    short_interest_request,
)
from aiomoomoo._proto import (
    Common_pb2,
    GetGlobalState_pb2,
    InitConnect_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo._security import Market, Security, parse_code

from ._fakes import decoded, rows_of

NOT_UTF8 = b"\xff\xfe"


def string_field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field: how a hostile peer puts any bytes in a string."""
    return bytes([number << 3 | 2, len(value)]) + value


def page_with(*, next_key: bytes = b"-1", day: bytes = b"2026-04-30") -> bytes:
    item = string_field(2, day)  # UsShortInterestItem.timestampStr
    s2c = string_field(1, item) + string_field(3, next_key)  # usItemList, nextKey
    return Qot_GetShortInterest_pb2.Response(retType=0).SerializeToString() + string_field(4, s2c)


def test_a_well_formed_page_decodes() -> None:
    reply = decode_short_interest(page_with())
    assert reply.next_key == "-1"
    assert reply.us.records()[0][1] == "2026-04-30"
    check_ret(reply, 3249)


def test_a_page_decodes_to_plain_columns_and_what_was_left_out() -> None:
    us = [
        Qot_GetShortInterest_pb2.UsShortInterestItem(
            timestamp=1, timestampStr="2026-04-30", sharesShort=0, closePrice=2.5
        ),
        Qot_GetShortInterest_pb2.UsShortInterestItem(timestamp=0, shortPercent=0.0),
    ]
    reply = decoded(us, next_key=None)
    assert reply.next_key is None
    assert (reply.ret_type, reply.ret_msg, reply.err_code) == (0, "", None)
    assert (len(reply.us), len(reply.hk), reply.hk.records()) == (2, 0, [])
    assert reply.rows(Market.US) is reply.us
    # Values are what protobuf reads (0, 0.0, "" for a field left out); left_out says which.
    assert reply.us.values[:4] == ((1, 0), ("2026-04-30", ""), (0, 0), (0.0, 0.0))
    assert reply.us.left_out[:4] == (None, (False, True), (False, True), (True, False))
    assert reply.us.left_out[4:] == ((True, True), (True, True), (False, True), (True, True))
    assert reply.us.records() == [
        (1, "2026-04-30", 0, None, None, None, 2.5, None),
        (0, None, None, 0.0, None, None, None, None),
    ]
    # A zero that was sent in every row is a value: no row left it out.
    sent = decoded(hk=[Qot_GetShortInterest_pb2.HkShortInterestItem(aggregatedShort=0)] * 3)
    assert sent.hk.left_out[2] is None
    assert sent.hk.records()[0][2] == 0


def test_a_failed_reply_decodes_with_its_result_and_no_rows() -> None:
    body = Qot_GetShortInterest_pb2.Response(retType=-1, retMsg="busy", errCode=7)
    reply = decode_short_interest(body.SerializeToString())
    assert (reply.ret_type, reply.ret_msg, reply.err_code, reply.next_key) == (-1, "busy", 7, None)
    assert (len(reply.us), len(reply.hk)) == (0, 0)
    with pytest.raises(ServerError, match="busy") as info:
        check_ret(reply, 3249)
    assert (info.value.ret_type, info.value.err_code, info.value.proto_id) == (-1, 7, 3249)


@pytest.mark.parametrize(
    ("market", "field"),
    [
        (Market.US, "sharesShort"),
        (Market.US, "avgDailyShareVolume"),
        (Market.HK, "aggregatedShort"),
    ],
)
def test_a_count_beyond_int64_is_a_protocol_error(market: Market, field: str) -> None:
    kind: Any = (
        Qot_GetShortInterest_pb2.UsShortInterestItem
        if market is Market.US
        else Qot_GetShortInterest_pb2.HkShortInterestItem
    )
    fine, corrupt = kind(**{field: 2**63 - 1}), kind(timestamp=1, **{field: 2**63})
    assert rows_of(market, [fine]).records()[0][2 if field != "avgDailyShareVolume" else 4] == (
        2**63 - 1
    )
    with pytest.raises(ProtocolError, match=f"{field} beyond the int64 range: {2**63}"):
        rows_of(market, [fine, corrupt])


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (page_with(next_key=NOT_UTF8), "nextKey"),
        (page_with(day=NOT_UTF8), "timestampStr"),
        (
            Qot_GetShortInterest_pb2.Response(retType=-1).SerializeToString()
            + string_field(2, NOT_UTF8),
            "retMsg",
        ),
    ],
)
def test_text_that_is_not_utf8_is_a_protocol_error(body: bytes, what: str) -> None:
    with pytest.raises(ProtocolError, match=f"{what} that is not UTF-8"):
        decode_short_interest(body)


def test_an_undecodable_body_is_a_protocol_error() -> None:
    for decode in (decode_short_interest, decode_init_connect, decode_keepalive, parse_notify):
        with pytest.raises(ProtocolError, match="undecodable"):
            decode(b"\xff\xff\xff\xff")


def test_init_connect_retmsg_that_is_not_utf8_is_a_protocol_error() -> None:
    body = InitConnect_pb2.Response(retType=-1).SerializeToString() + string_field(2, NOT_UTF8)
    with pytest.raises(ProtocolError, match="proto 1001 with a retMsg that is not UTF-8"):
        decode_init_connect(body)


def test_init_reply_needs_connection_data_and_reports_refusals() -> None:
    with pytest.raises(ProtocolError, match="sent no connection data"):
        init_reply(InitConnect_pb2.Response(retType=0))
    refused = InitConnect_pb2.Response(retType=-1, retMsg="not logged in", errCode=5)
    with pytest.raises(ServerError, match="not logged in") as info:
        init_reply(refused)
    assert (info.value.ret_type, info.value.err_code, info.value.proto_id) == (-1, 5, 1001)
    ok = InitConnect_pb2.Response(retType=0)
    ok.s2c.connID, ok.s2c.serverVer, ok.s2c.loginUserID = 9, 1011, 3
    ok.s2c.connAESKey, ok.s2c.keepAliveInterval = "k" * 16, 10
    assert init_reply(ok).keepalive_interval == 10.0


def accepted_init_connect(*, key: bytes = b"0123456789ABCDEF", iv: bytes | None = None) -> bytes:
    """An accepted InitConnect reply, its key and IV put in as raw bytes (UTF-8 or not)."""
    s2c = b"\x08\xf3\x07\x10\x03\x18\x09"  # serverVer 1011, loginUserID 3, connID 9
    s2c += string_field(4, key) + b"\x28\x0a"  # connAESKey, keepAliveInterval 10
    if iv is not None:
        s2c += string_field(6, iv)
    return InitConnect_pb2.Response(retType=0).SerializeToString() + string_field(4, s2c)


def test_the_aes_key_and_iv_are_read_from_an_accepted_init_connect_reply() -> None:
    cbc = accepted_init_connect(iv=b"fedcba9876543210")
    assert init_connect_aes_key(cbc) == (b"0123456789ABCDEF", b"fedcba9876543210")
    assert init_connect_aes_key(accepted_init_connect()) == (b"0123456789ABCDEF", None)
    assert init_reply(decode_init_connect(cbc)).keepalive_interval == 10.0


def test_a_reply_without_a_usable_aes_key_names_none_and_the_handshake_says_why() -> None:
    refused = InitConnect_pb2.Response(retType=-1, retMsg="not logged in").SerializeToString()
    no_data = InitConnect_pb2.Response(retType=0).SerializeToString()
    garbage = b"\xff\xff\xff\xff"
    for body in (refused, no_data, garbage):
        assert init_connect_aes_key(body) is None
    with pytest.raises(ServerError, match="not logged in"):
        init_reply(decode_init_connect(refused))
    with pytest.raises(ProtocolError, match="sent no connection data"):
        init_reply(decode_init_connect(no_data))
    with pytest.raises(ProtocolError, match="undecodable"):
        decode_init_connect(garbage)


@pytest.mark.parametrize("where", ["key", "iv"])
def test_an_aes_key_or_iv_that_is_not_text_is_a_protocol_error_hiding_it(where: str) -> None:
    secret = NOT_UTF8 + b"secret-key-xy"
    body = accepted_init_connect(key=secret) if where == "key" else accepted_init_connect(iv=secret)
    with pytest.raises(ProtocolError, match="AES key or IV is not UTF-8") as info:
        init_connect_aes_key(body)
    assert "secret" not in str(info.value)
    assert repr(secret) not in str(info.value)


def test_check_ret_picks_the_specific_server_error() -> None:
    def failed(message: str) -> Qot_GetShortInterest_pb2.Response:
        return Qot_GetShortInterest_pb2.Response(retType=-1, retMsg=message)

    with pytest.raises(UnknownSecurityError):
        check_ret(failed("unknown stock US.X"), 3249)
    with pytest.raises(RateLimitError) as limited:
        check_ret(
            failed(
                "Get short interest is too frequent, request failed, no more than 30 times "
                "every 30 seconds."
            ),
            3249,
        )
    assert limited.value.quota == (30, 30.0)
    with pytest.raises(ServerError) as info:
        check_ret(failed("something else"), 3249)
    assert info.value.err_code is None
    # The decoded short-interest reply picks the same way.
    with pytest.raises(UnknownSecurityError):
        check_ret(decode_short_interest(failed("unknown stock US.X").SerializeToString()), 3249)


def test_requests_round_trip() -> None:
    body = short_interest_request(parse_code("HK.00700"), "123", 5)
    c2s = Qot_GetShortInterest_pb2.Request.FromString(body).c2s
    assert (c2s.security.market, c2s.security.code, c2s.nextKey, c2s.num) == (1, "00700", "123", 5)
    first = Qot_GetShortInterest_pb2.Request.FromString(
        short_interest_request(parse_code("US.AAPL"), None, None)
    ).c2s
    assert not first.HasField("nextKey")
    assert not first.HasField("num")
    init = InitConnect_pb2.Request.FromString(init_connect_request("me", encrypted=True)).c2s
    assert (init.clientID, init.packetEncAlgo, init.recvNotify) == ("me", 2, True)


def test_notify_pushes_become_gateway_events() -> None:
    push = Notify_pb2.Response(retType=0)
    push.s2c.type = Notify_pb2.NotifyType_GtwEvent
    push.s2c.event.eventType = 0
    push.s2c.event.desc = "restarted"
    assert parse_notify(push.SerializeToString()) == GatewayEvent(1, "GtwEvent", "restarted")
    other = Notify_pb2.Response(retType=0)
    other.s2c.type = 99
    assert parse_notify(other.SerializeToString()) == GatewayEvent(99, "99", "")


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.binary(max_size=12),
        st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    where=st.sampled_from(["nextKey", "timestampStr"]),
)
def test_text_is_refused_exactly_when_python_would_not_decode_it(text: bytes, where: str) -> None:
    # protobuf's reading of proto2 text (str when valid, bytes when not) must agree with
    # Python's strict UTF-8, surrogates, overlong forms and truncated sequences included, or
    # bad text would reach a DataFrame.
    body = page_with(next_key=text) if where == "nextKey" else page_with(day=text)
    if _is_utf8(text):
        decode_short_interest(body)
    else:
        with pytest.raises(ProtocolError, match=f"{where} that is not UTF-8"):
            decode_short_interest(body)


def _protobuf_request(security: Security, next_key: str | None, num: int | None) -> bytes:
    c2s = Qot_GetShortInterest_pb2.C2S()
    c2s.security.market = int(security.market)
    c2s.security.code = security.symbol
    if next_key is not None:
        c2s.nextKey = next_key
    if num is not None:
        c2s.num = num
    return Qot_GetShortInterest_pb2.Request(c2s=c2s).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(
    market=st.sampled_from(list(Market)),
    symbol=st.text(min_size=1, max_size=200).filter(
        lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)
    ),
    next_key=st.none()
    | st.text(max_size=300).filter(lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)),
    num=st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
def test_the_request_body_is_what_protobuf_writes(
    market: Market, symbol: str, next_key: str | None, num: int | None
) -> None:
    security = Security(market, symbol)
    built = short_interest_request(security, next_key, num)
    assert built == _protobuf_request(security, next_key, num)
    assert Qot_GetShortInterest_pb2.Request.FromString(built).c2s.security.code == symbol


def test_a_global_state_reply_becomes_names_and_flags() -> None:
    reply = GetGlobalState_pb2.Response(retType=0)
    s2c = reply.s2c
    s2c.marketHK, s2c.marketUS, s2c.marketSH, s2c.marketSZ, s2c.marketHKFuture = 3, 6, 77, 0, 11
    s2c.qotLogined, s2c.trdLogined = False, True
    s2c.serverVer, s2c.serverBuildNo, s2c.time = 1011, 4, 1_700_000_000
    s2c.programStatus.type = Common_pb2.ProgramStatusType_LoginFailed
    state = global_state(decode_global_state(reply.SerializeToString()))
    assert state.markets == {
        "HK": "Morning",
        "US": "Closed",
        "SH": "77",  # a state this version does not know keeps its number
        "SZ": "None",
        "HK_FUTURE": "AfterHoursEnd",
    }
    assert (state.quote_logged_in, state.trade_logged_in) == (False, True)
    assert (state.server_version, state.server_build, state.server_time) == (1011, 4, 1_700_000_000)
    assert (state.program_status, state.conn_id) == ("LoginFailed", None)
    with pytest.raises(ProtocolError, match="without its state"):
        global_state(GetGlobalState_pb2.Response(retType=0))
