"""The exceptions aiomoomoo raises.

Everything that goes wrong on the server, the connection or the wire is a `MoomooError`.
Bad arguments are plain ``ValueError`` / ``TypeError`` raised before anything is sent.
"""

from __future__ import annotations

import re

__all__ = [
    "ClientClosedError",
    "ConnectError",
    "ConnectionLostError",
    "MoomooError",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "UnknownSecurityError",
    "server_error",
]


class MoomooError(Exception):
    """Root of every error aiomoomoo raises for server, connection and protocol failures."""


class ConnectionLostError(MoomooError, ConnectionError):
    """The connection to OpenD dropped while a request was waiting for its reply."""


class ConnectError(MoomooError, ConnectionError):
    """No connection to OpenD could be made (refused, unreachable, or InitConnect failed).

    Raised once the client's connect attempts are used up; unlike `ConnectionLostError` it is
    not retried, since nothing was in flight.
    """


class ClientClosedError(MoomooError):
    """The client was closed; it accepts no new requests."""


class RequestTimeoutError(MoomooError, TimeoutError):
    """OpenD did not answer within the request's timeout."""


class ProtocolError(MoomooError):
    """The peer broke the OpenD wire protocol: bad magic, checksum, size or message."""


class ServerError(MoomooError):
    """OpenD answered a request with a failure.

    ``ret_msg`` is OpenD's own message, kept verbatim; ``ret_type`` and ``err_code`` are the
    reply's numeric fields (``err_code`` is ``None`` when OpenD did not send one).
    """

    def __init__(self, ret_msg: str, *, ret_type: int, err_code: int | None, proto_id: int) -> None:
        self.ret_msg = ret_msg
        self.ret_type = ret_type
        self.err_code = err_code
        self.proto_id = proto_id
        detail = f"retType={ret_type}" + (f", errCode={err_code}" if err_code is not None else "")
        super().__init__(f"OpenD refused proto {proto_id}: {ret_msg or '(no message)'} ({detail})")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: the default reduce would call cls(message) and fail, which
        # breaks sending the error across processes (multiprocessing, concurrent.futures).
        return (
            _rebuild_server_error,
            (type(self), self.ret_msg, self.ret_type, self.err_code, self.proto_id),
        )


class RateLimitError(ServerError):
    """OpenD refused a request because the account's request quota was used up."""


class UnknownSecurityError(ServerError):
    """OpenD does not know the security the request named."""


def _rebuild_server_error(
    cls: type[ServerError], ret_msg: str, ret_type: int, err_code: int | None, proto_id: int
) -> ServerError:
    return cls(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)


# OpenD reports failures as free text; these patterns pick out the cases callers handle
# differently. English and Chinese wordings both occur in OpenD's messages.
_CLASSIFIERS: list[tuple[re.Pattern[str], type[ServerError]]] = [
    (re.compile(r"rate limit|too frequent|frequency|频率|頻率|频繁|頻繁", re.I), RateLimitError),
    (
        re.compile(r"unknown (stock|security)|stock not exist|未知股票|股票不存在", re.I),
        UnknownSecurityError,
    ),
]


def server_error(
    ret_msg: str, *, ret_type: int, err_code: int | None, proto_id: int
) -> ServerError:
    """Build the most specific `ServerError` subclass for a failed reply."""
    cls: type[ServerError] = ServerError
    for pattern, candidate in _CLASSIFIERS:
        if pattern.search(ret_msg):
            cls = candidate
            break
    return cls(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)
