"""The client's messages: request bodies built, reply bodies turned into checked values.

The only client-side user of `aiomoomoo._proto`, down to the AES key InitConnect's reply names
(`init_connect_aes_key`; the connection hands it to the crypto module, which knows no protobuf).
A short-interest reply leaves here as plain values (`aiomoomoo._rows`): paging, frames and the
store never see a protobuf message. Every reply passes two checks here, in one place each:

- `decode`-style functions turn bytes into a reply and refuse what is not a well-formed one
  (undecodable protobuf, text that is not UTF-8, a count beyond int64) with `ProtocolError`: the
  connection treats such a reply as a broken stream;
- `check_ret` turns ``retType != 0`` into the most specific `ServerError`.
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from ._errors import ProtocolError, server_error
from ._proto import (
    Common_pb2,
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_Common_pb2,
    Qot_GetShortInterest_pb2,
)
from ._rows import Rows, ShortInterestReply, columns_for
from ._security import Market, Security
from ._wire import ProtoId

__all__ = [
    "GatewayEvent",
    "GlobalState",
    "InitReply",
    "check_ret",
    "decode_global_state",
    "decode_init_connect",
    "decode_keepalive",
    "decode_short_interest",
    "global_state",
    "global_state_request",
    "init_connect_aes_key",
    "init_connect_request",
    "init_reply",
    "keepalive_request",
    "parse_notify",
    "short_interest_request",
]

_CLIENT_VERSION: Final = 300
_NO_ENCRYPTION: Final = -1  # Common.PacketEncAlgo_None
_AES_CBC: Final = 2  # Common.PacketEncAlgo_AES_CBC

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A Notify (1003) push from OpenD: ``type`` is OpenD's NotifyType number.

    ``description`` carries the event text of gateway events (``type == 1``) and is empty for
    the others.
    """

    type: int
    type_name: str
    description: str


@dataclass(frozen=True, slots=True)
class InitReply:
    """The connection data of a successful InitConnect reply."""

    conn_id: int
    server_version: int
    login_user_id: int
    keepalive_interval: float


def _text(value: object, what: str, proto_id: int) -> str:
    """``value`` if protobuf decoded it as text; proto2 hands invalid UTF-8 back as bytes."""
    if isinstance(value, str):
        return value
    raise ProtocolError(f"OpenD sent proto {proto_id} with a {what} that is not UTF-8: {value!r}")


def _parse(message_type: type[M], body: bytes, proto_id: int) -> M:
    try:
        return message_type.FromString(body)
    except DecodeError as exc:
        raise ProtocolError(f"OpenD sent an undecodable reply to proto {proto_id}: {exc}") from exc


def check_ret(reply: object, proto_id: int) -> None:
    """Raise the `ServerError` a failed reply stands for; return for ``retType == 0``.

    ``reply`` is a decoded protobuf reply or a `ShortInterestReply`.
    """
    if isinstance(reply, ShortInterestReply):
        if reply.ret_type == 0:
            return
        ret_type, ret_msg, err_code = reply.ret_type, reply.ret_msg, reply.err_code
    else:
        message: Any = reply
        if message.retType == 0:
            return
        ret_type, ret_msg = message.retType, _text(message.retMsg, "retMsg", proto_id)
        err_code = message.errCode if message.HasField("errCode") else None
    raise server_error(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)


# -- InitConnect -----------------------------------------------------------------------------


def init_connect_request(client_id: str, *, encrypted: bool) -> bytes:
    """The InitConnect body; an encrypted connection asks for AES-CBC as the official client."""
    c2s = InitConnect_pb2.C2S(
        clientVer=_CLIENT_VERSION,
        clientID=client_id,
        recvNotify=True,
        packetEncAlgo=_AES_CBC if encrypted else _NO_ENCRYPTION,
        pushProtoFmt=0,
        programmingLanguage="Python",
    )
    return InitConnect_pb2.Request(c2s=c2s).SerializeToString()


def decode_init_connect(body: bytes) -> InitConnect_pb2.Response:
    """InitConnect's reply, refused with `ProtocolError` if it is not a readable one."""
    reply = _parse(InitConnect_pb2.Response, body, ProtoId.INIT_CONNECT)
    _text(reply.retMsg, "retMsg", ProtoId.INIT_CONNECT)
    return reply


def init_connect_aes_key(body: bytes) -> tuple[bytes, bytes | None] | None:
    """The AES key and CBC IV (None for FTAES-ECB) an accepted InitConnect reply names.

    The connection calls this with the reply's plaintext before it takes the next frame, which
    travels under that key. A refused reply, one without connection data or one that does not
    decode gives None: `decode_init_connect` says what is wrong when the handshake reads it. A
    key or IV that is not text raises `ProtocolError`, whose message never shows the key.
    """
    try:
        reply = InitConnect_pb2.Response.FromString(body)
    except DecodeError:
        return None
    if reply.retType != 0 or not reply.HasField("s2c"):
        return None
    s2c = reply.s2c
    key: object = s2c.connAESKey
    iv: object = s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None
    if not isinstance(key, str) or not isinstance(iv, str | None):
        raise ProtocolError("OpenD sent an InitConnect reply whose AES key or IV is not UTF-8")
    return key.encode(), iv.encode() if iv is not None else None


def init_reply(reply: InitConnect_pb2.Response) -> InitReply:
    """The connection data of a decoded reply; `ServerError` or `ProtocolError` if it has none."""
    check_ret(reply, ProtoId.INIT_CONNECT)
    if not reply.HasField("s2c"):
        raise ProtocolError("OpenD accepted InitConnect but sent no connection data")
    s2c = reply.s2c
    return InitReply(s2c.connID, s2c.serverVer, s2c.loginUserID, float(s2c.keepAliveInterval))


# -- KeepAlive and Notify --------------------------------------------------------------------


def keepalive_request() -> bytes:
    return KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=int(time.time()))).SerializeToString()


def decode_keepalive(body: bytes) -> KeepAlive_pb2.Response:
    reply = _parse(KeepAlive_pb2.Response, body, ProtoId.KEEP_ALIVE)
    _text(reply.retMsg, "retMsg", ProtoId.KEEP_ALIVE)
    return reply


def parse_notify(body: bytes) -> GatewayEvent:
    """A Notify push as a `GatewayEvent`; `ProtocolError` if it cannot be read."""
    push = _parse(Notify_pb2.Response, body, ProtoId.NOTIFY)
    s2c = push.s2c
    try:
        name = Notify_pb2.NotifyType.Name(s2c.type).removeprefix("NotifyType_")  # type: ignore[arg-type]
    except ValueError:
        name = str(s2c.type)
    desc = _text(s2c.event.desc, "event text", ProtoId.NOTIFY) if s2c.HasField("event") else ""
    return GatewayEvent(s2c.type, name, desc)


# -- GetGlobalState (1002) ------------------------------------------------------------------

# The markets GetGlobalState always reports, by their S2C field.
_MARKET_FIELDS: Final = {
    "HK": "marketHK",
    "US": "marketUS",
    "SH": "marketSH",
    "SZ": "marketSZ",
    "HK_FUTURE": "marketHKFuture",
}


@dataclass(frozen=True, slots=True)
class GlobalState:
    """OpenD's GetGlobalState (1002) answer: whether it is logged in, and each market's state.

    ``quote_logged_in`` is what short interest needs: OpenD answers quote requests only when it
    is logged in to the quote server. ``markets`` maps ``"US"``, ``"HK"``, ``"SH"``, ``"SZ"`` and
    ``"HK_FUTURE"`` to OpenD's market state name (``"Closed"``, ``"Morning"``, ...; the number for
    one this version does not know). ``program_status`` is OpenD's own status name
    (``"Ready"``, ``"LoginFailed"``, ...), empty when it does not say.
    """

    quote_logged_in: bool
    trade_logged_in: bool
    server_version: int
    server_build: int
    server_time: int
    markets: dict[str, str]
    program_status: str
    conn_id: int | None


def global_state_request() -> bytes:
    """The 1002 body; its one field, the user id, is obsolete and 0 does."""
    return GetGlobalState_pb2.Request(c2s=GetGlobalState_pb2.C2S(userID=0)).SerializeToString()


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def decode_global_state(body: bytes) -> GetGlobalState_pb2.Response:
    """GetGlobalState's reply, refused with `ProtocolError` if it is not a readable one."""
    reply = _parse(GetGlobalState_pb2.Response, body, ProtoId.GET_GLOBAL_STATE)
    _text(reply.retMsg, "retMsg", ProtoId.GET_GLOBAL_STATE)
    return reply


def global_state(reply: GetGlobalState_pb2.Response) -> GlobalState:
    """The `GlobalState` of a successful reply; `ProtocolError` if it carries none."""
    if not reply.HasField("s2c"):
        raise ProtocolError("OpenD answered GetGlobalState without its state")
    s2c = reply.s2c
    markets = {
        market: _enum_name(Qot_Common_pb2.QotMarketState, getattr(s2c, field), "QotMarketState_")
        for market, field in _MARKET_FIELDS.items()
    }
    status = ""
    if s2c.HasField("programStatus"):
        status = _enum_name(
            Common_pb2.ProgramStatusType, s2c.programStatus.type, "ProgramStatusType_"
        )
    return GlobalState(
        quote_logged_in=s2c.qotLogined,
        trade_logged_in=s2c.trdLogined,
        server_version=s2c.serverVer,
        server_build=s2c.serverBuildNo,
        server_time=s2c.time,
        markets=markets,
        program_status=status,
        conn_id=s2c.connID if s2c.HasField("connID") else None,
    )


# -- short interest (3249) -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # a negative int32 travels as ten bytes, as protobuf sends it
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field whose one-byte ``tag`` is (number << 3 | 2)."""
    return bytes((tag,)) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=512)
def _security_field(security: Security) -> bytes:
    """C2S field 1, the security, built once per security: a walk asks for the same one again."""
    market = b"\x08" + _varint(int(security.market))  # Security.market = 1 (int32)
    return _field(0x0A, market + _field(0x12, security.symbol.encode()))  # Security.code = 2


def short_interest_request(security: Security, next_key: str | None, num: int | None) -> bytes:
    """The 3249 request body, byte for byte what protobuf writes, built without a message.

    Request.c2s = 1 holds C2S: security = 1, nextKey = 2 (string), num = 3 (int32).
    """
    c2s = _security_field(security)
    if next_key is not None:
        c2s += _field(0x12, next_key.encode())
    if num is not None:
        c2s += b"\x18" + _varint(num)
    return _field(0x0A, c2s)


_INT64_MAX: Final = 2**63 - 1
# The protobuf field each column is read from.
_FIELDS: Final = {
    "timestamp": "timestamp",
    "timestamp_str": "timestampStr",
    "shares_short": "sharesShort",
    "short_percent": "shortPercent",
    "avg_daily_share_volume": "avgDailyShareVolume",
    "days_to_cover": "daysToCover",
    "close_price": "closePrice",
    "last_close_price": "lastClosePrice",
    "aggregated_short": "aggregatedShort",
    "aggregated_short_ratio": "aggregatedShortRatio",
}


class _RowReader:
    """How one market's protobuf rows become `Rows`: every field of a row in one C-level
    attribute fetch, the rows transposed into columns by ``zip``."""

    __slots__ = ("checks", "empty", "fields", "getter", "market", "texts", "unsigned")

    def __init__(self, market: Market, item: Descriptor) -> None:
        self.market = market
        self.fields = tuple(_FIELDS[column] for column in columns_for(market))
        self.getter = operator.attrgetter(*self.fields)
        # What an absent proto2 optional field reads as: only a column holding it can have gaps.
        defaults = [item.fields_by_name[field].default_value for field in self.fields]
        self.checks = tuple(enumerate(zip(self.fields, defaults, strict=True)))
        # uint64 on the wire; no count comes near 2**63, so one that does is corrupt.
        self.unsigned = self._of_type(item, FieldDescriptor.TYPE_UINT64)
        self.texts = self._of_type(item, FieldDescriptor.TYPE_STRING)
        self.empty = Rows.empty(market)

    def _of_type(self, item: Descriptor, wire_type: int) -> tuple[tuple[int, str], ...]:
        """Where the fields of protobuf type ``wire_type`` are: (column, field) pairs."""
        fields = enumerate(self.fields)
        return tuple((at, f) for at, f in fields if item.fields_by_name[f].type == wire_type)

    def read(self, items: Sequence[Any]) -> Rows:
        count = len(items)
        if not count:
            return self.empty
        values = tuple(zip(*map(self.getter, items), strict=True))
        for at, field in self.texts:
            try:
                "".join(values[at])  # a TypeError here is cheaper than a type check per cell
            except TypeError:
                # proto2 hands text that is not UTF-8 back as bytes: say which.
                for value in values[at]:
                    _text(value, field, ProtoId.GET_SHORT_INTEREST)
        left_out: list[tuple[bool, ...] | None] = [None] * len(values)
        for at, (field, default) in self.checks:
            # HasField is the one costly call per cell, so it is asked only of columns where a
            # default value shows up, which is where a field can have been left out.
            if default in values[at]:
                gone = tuple([not item.HasField(field) for item in items])
                if True in gone:
                    left_out[at] = gone
        for at, field in self.unsigned:
            if max(values[at]) > _INT64_MAX:
                raise ProtocolError(
                    f"OpenD sent a {field} beyond the int64 range: {max(values[at])}"
                )
        return Rows(self.market, count, values, tuple(left_out))


_US_ROWS: Final = _RowReader(Market.US, Qot_GetShortInterest_pb2.UsShortInterestItem.DESCRIPTOR)
_HK_ROWS: Final = _RowReader(Market.HK, Qot_GetShortInterest_pb2.HkShortInterestItem.DESCRIPTOR)


def decode_short_interest(body: bytes) -> ShortInterestReply:
    """A 3249 reply as plain values, its every text field UTF-8; `ProtocolError` otherwise.

    Without ``nextKey`` the reply's ``next_key`` is None; a failed reply (``ret_type != 0``)
    usually has no rows, and `check_ret` says what failed.
    """
    proto_id = ProtoId.GET_SHORT_INTEREST
    reply = _parse(Qot_GetShortInterest_pb2.Response, body, proto_id)
    s2c = reply.s2c
    next_key = _text(s2c.nextKey, "nextKey", proto_id) if s2c.HasField("nextKey") else None
    return ShortInterestReply(
        reply.retType,
        _text(reply.retMsg, "retMsg", proto_id),
        reply.errCode if reply.HasField("errCode") else None,
        next_key,
        _US_ROWS.read(s2c.usItemList),
        _HK_ROWS.read(s2c.hkItemList),
    )
