"""The messages between the request handler and a transport, and the protobuf helpers around them.

A transport gives the handler a request as ``(proto_id, serial, body, fmt)`` with a `Session`
for its connection, and gets back an `Answer` of `Reply` values; see `._handler`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError, EncodeError, Message

from .._wire import ProtoFmt

__all__ = ["Answer", "Reply", "Session", "encode", "fail", "parse", "quote"]

logger = logging.getLogger("aiomoomoo.testing")

RET_OK: Final = 0
RET_FAILED: Final = -1
# How much of a client's value a failure reply quotes.
_QUOTED: Final = 40


class Reply(NamedTuple):
    """One message for the transport to send: ``body`` is plaintext in format ``fmt``."""

    proto_id: int
    serial: int
    body: bytes
    fmt: int = ProtoFmt.PROTOBUF


@dataclass(slots=True)
class Answer:
    """What to do about one request: send ``replies`` after ``delay`` s, then maybe ``close``."""

    replies: list[Reply] = field(default_factory=list)
    delay: float = 0.0
    close: bool = False


@dataclass(slots=True, eq=False)
class Session:
    """One client connection as the handler sees it, whatever carries its bytes."""

    #: Set by the transport: this OpenD has an RSA key, so InitConnect must come encrypted.
    encryption_required: bool = False
    #: Set by the transport: the last InitConnect arrived RSA-encrypted.
    rsa_request: bool = False
    #: Set by the handler at InitConnect (or `RequestHandler.login`); 0 before.
    conn_id: int = 0
    #: Short-interest requests seen on this connection, for ``drop_after`` and ``push_every``.
    short_interest_count: int = 0
    #: Set by the handler: InitConnect's reply goes out under RSA, and later frames under AES.
    rsa_reply: bool = False
    aes_key: bytes | None = None
    aes_iv: bytes | None = None


def fail(response: Message, ret_msg: str, err_code: int) -> Message:
    response.retType = RET_FAILED  # type: ignore[attr-defined]
    response.retMsg = ret_msg  # type: ignore[attr-defined]
    response.errCode = err_code  # type: ignore[attr-defined]
    return response


def parse(body: bytes, fmt: int, message: Message) -> bool:
    """Fill ``message`` from a client's ``body``; False if it is not a complete ``message``.

    Any bytes at all may arrive. protobuf 4-5's JSON parser assumes the shape it expects and
    raises ``TypeError`` or ``AttributeError`` on a number where an object belongs (``0``, or
    ``{"c2s": 0}``), so the JSON path refuses every such value, not only ``ParseError``.
    """
    try:
        if fmt == ProtoFmt.JSON:
            value = json.loads(body.decode("utf-8"))
            if not isinstance(value, dict):
                return False
            json_format.ParseDict(value, message)
        else:
            message.ParseFromString(body)
    # ValueError covers UnicodeDecodeError and json.JSONDecodeError; TypeError, AttributeError
    # and KeyError are protobuf 4-5's JSON parser on a misshapen value.
    except (
        DecodeError,
        json_format.ParseError,
        RecursionError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
    ):
        return False
    return message.IsInitialized()


def encode(response: Message, fmt: int) -> bytes:
    try:
        if fmt == ProtoFmt.JSON:
            return json_format.MessageToJson(response).encode("utf-8")
        return response.SerializeToString()
    except EncodeError:  # pragma: no cover - a simulator bug, not a client's
        logger.exception("simulator built an incomplete reply")
        raise


def quote(value: str | bytes) -> str:
    """``repr(value)`` for a failure reply, shortened if the client sent something long."""
    text = repr(value)
    return text if len(text) <= _QUOTED else f"{text[:_QUOTED]}... ({len(value)} characters)"
