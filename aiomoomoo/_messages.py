"""The client's messages: request bodies built, reply bodies turned into checked values.

The only client-side user of `aiomoomoo._proto`, down to the AES key InitConnect's reply names
(`init_connect_aes_key`; the connection hands it to the crypto module, which knows no protobuf).
Every reply passes two checks here, in one place each:

- `decode`-style functions turn bytes into a message and refuse what is not a well-formed reply
  (undecodable protobuf, text that is not UTF-8) with `ProtocolError`: the connection treats such
  a reply as a broken stream;
- `check_ret` turns ``retType != 0`` into the most specific `ServerError`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from ._errors import ProtocolError, server_error
from ._proto import InitConnect_pb2, KeepAlive_pb2, Notify_pb2, Qot_GetShortInterest_pb2
from ._security import Security
from ._wire import ProtoId

__all__ = [
    "GatewayEvent",
    "InitReply",
    "check_ret",
    "decode_init_connect",
    "decode_keepalive",
    "decode_short_interest",
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


def check_ret(reply: Any, proto_id: int) -> None:
    """Raise the `ServerError` a failed reply stands for; return for ``retType == 0``."""
    if reply.retType == 0:
        return
    raise server_error(
        _text(reply.retMsg, "retMsg", proto_id),
        ret_type=reply.retType,
        err_code=reply.errCode if reply.HasField("errCode") else None,
        proto_id=proto_id,
    )


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


def _text_checker(root: Descriptor) -> type[Message]:
    """A message type with only ``root``'s text fields (and the messages holding them), proto3.

    Proto2 parsing leaves text unchecked and hands invalid UTF-8 back as bytes when a field is
    read, so checking every row's text in Python costs more than decoding the page. proto3
    parsing checks text in C: parsing a reply a second time with this type finds bad text for
    about a quarter of that, and the fields it ignores are skipped.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name=f"aiomoomoo_text_check/{root.full_name}.proto",
        package="aiomoomoo_text_check",
        syntax="proto3",
    )
    names: dict[str, bool] = {}

    def holds_text(message: Descriptor | None, outer: tuple[str, ...] = ()) -> bool:
        if message is None or message.full_name in outer:
            return False
        return any(
            field.type == FieldDescriptor.TYPE_STRING
            or holds_text(field.message_type, (*outer, message.full_name))
            for field in message.fields
        )

    def add(message: Descriptor) -> str:
        name = message.full_name.replace(".", "_")
        if name in names:
            return name
        names[name] = True
        shadow = file.message_type.add(name=name)
        for field in message.fields:
            label = 3 if _is_repeated(field) else 1  # LABEL_REPEATED or LABEL_OPTIONAL
            if field.type == FieldDescriptor.TYPE_STRING:
                shadow.field.add(name=field.name, number=field.number, type=9, label=label)
            elif field.message_type is not None and holds_text(field.message_type):
                inner = f".{file.package}.{add(field.message_type)}"
                shadow.field.add(
                    name=field.name, number=field.number, type=11, type_name=inner, label=label
                )
        return name

    top = add(root)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{top}"))


_LABEL: Final = "label"  # not in protobuf 7's type stubs


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 has only is_repeated; 4.25 to 5.x have only label.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(getattr(field, _LABEL) == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)


_SHORT_INTEREST_TEXT: Final = _text_checker(Qot_GetShortInterest_pb2.Response.DESCRIPTOR)


def decode_short_interest(body: bytes) -> Qot_GetShortInterest_pb2.Response:
    """A 3249 reply whose every text field is UTF-8; `ProtocolError` otherwise."""
    proto_id = ProtoId.GET_SHORT_INTEREST
    reply = _parse(Qot_GetShortInterest_pb2.Response, body, proto_id)
    try:
        _SHORT_INTEREST_TEXT.FromString(body)
    except DecodeError:
        # Some text is not UTF-8: the field by field check says which.
        _text(reply.retMsg, "retMsg", proto_id)
        s2c = reply.s2c
        _text(s2c.nextKey, "nextKey", proto_id)
        _check_rows(s2c.usItemList, proto_id)
        _check_rows(s2c.hkItemList, proto_id)
    return reply


def _check_rows(items: Iterable[Any], proto_id: int) -> None:
    for item in items:
        if type(item.timestampStr) is not str:
            _text(item.timestampStr, "timestampStr", proto_id)
