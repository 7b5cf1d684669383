"""The exceptions aiomoomoo raises.

Everything that goes wrong on the server, the connection or the wire is a `MoomooError`.
Bad arguments are plain ``ValueError`` / ``TypeError`` raised before anything is sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ClientClosedError",
    "ConnectError",
    "ConnectionLostError",
    "FetchManyError",
    "MoomooError",
    "NotSentError",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "StoreBusyError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
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
    """OpenD refused a request because the API's request quota was used up for now.

    ``quota`` is the budget OpenD stated in its refusal, ``(max_requests, period_seconds)``
    (``no more than N times every S seconds`` is ``(N, S)``), or ``None`` when the message did
    not give one.
    """

    def __init__(
        self,
        ret_msg: str,
        *,
        ret_type: int,
        err_code: int | None,
        proto_id: int,
        quota: tuple[int, float] | None = None,
    ) -> None:
        super().__init__(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)
        self.quota = quota

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_rate_limit_error,
            (type(self), self.ret_msg, self.ret_type, self.err_code, self.proto_id, self.quota),
        )


class UnknownSecurityError(ServerError):
    """OpenD does not know the security the request named."""


def _rebuild_server_error(
    cls: type[ServerError], ret_msg: str, ret_type: int, err_code: int | None, proto_id: int
) -> ServerError:
    return cls(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)


def _rebuild_rate_limit_error(
    cls: type[RateLimitError],
    ret_msg: str,
    ret_type: int,
    err_code: int | None,
    proto_id: int,
    quota: tuple[int, float] | None,
) -> RateLimitError:
    return cls(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id, quota=quota)


# OpenD reports failures as free text, one template per API and language. A refusal for the quota
# reads "<API name> is too frequent, request failed, no more than N times every S seconds." or
# "<API名>频率太高，请求失败，每S秒最多N次。". Only those templates count: a message that merely  # noqa: RUF003
# mentions a frequency ("invalid kline frequency parameter", "频率参数错误") is a bad argument, and
# an exhausted allowance ("历史K线额度不足", "订阅额度不足") is not released by waiting.
_NUMBER = r"(\d+(?:\.\d+)?)"
_RATE_LIMIT_EN: Final = re.compile(
    r"\btoo\s+frequent\s*[,\uff0c]\s*request\s+failed"
    r"(?:\s*[,\uff0c]\s*no\s+more\s+than\s+(\d+)\s+times?\s+every\s+"
    + _NUMBER
    + r"\s+seconds?\b)?",
    re.IGNORECASE,
)
_RATE_LIMIT_ZH: Final = re.compile(
    r"[频頻]率太高\s*[,\uff0c]\s*[请請]求失[败敗]"
    r"(?:\s*[,\uff0c]\s*每\s*" + _NUMBER + r"\s*秒\s*最多\s*(\d+)\s*次)?"
)
_UNKNOWN_SECURITY: Final = re.compile(
    r"unknown (stock|security)|stock not exist|未知股票|股票不存在", re.IGNORECASE
)


#: The longest window a refusal may state and still be adopted by the client's limiter. OpenD's
#: windows are seconds long (30 s for most APIs); the wait for a slot of the client's own limiter
#: is outside every request's timeout, so a hostile or broken gateway stating "1 time every
#: 10^9 seconds" must not become a window that freezes the client.
LONGEST_STATED_PERIOD: Final = 300.0
#: More digits than any real count has; also keeps int() below Python's own limit on digits.
_MOST_DIGITS: Final = 18


def _budget(count: str | None, seconds: str | None) -> tuple[int, float] | None:
    """``(N, S)`` from a refusal's numbers, None if absent or unusable as a limiter's budget."""
    if count is None or seconds is None or len(count) > _MOST_DIGITS:
        return None
    max_requests, period = int(count), float(seconds)
    if max_requests < 1 or not 0 < period <= LONGEST_STATED_PERIOD:
        return None
    return max_requests, period


def server_error(
    ret_msg: str, *, ret_type: int, err_code: int | None, proto_id: int
) -> ServerError:
    """Build the most specific `ServerError` subclass for a failed reply.

    This is the one place a refusal's text is classified: a `RateLimitError` (with the budget it
    states as ``quota``), an `UnknownSecurityError`, or else a plain `ServerError`.
    """
    if english := _RATE_LIMIT_EN.search(ret_msg):
        quota = _budget(english[1], english[2])
    elif chinese := _RATE_LIMIT_ZH.search(ret_msg):
        quota = _budget(chinese[2], chinese[1])
    else:
        cls = UnknownSecurityError if _UNKNOWN_SECURITY.search(ret_msg) else ServerError
        return cls(ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id)
    return RateLimitError(
        ret_msg, ret_type=ret_type, err_code=err_code, proto_id=proto_id, quota=quota
    )


class NotSentError(ConnectionLostError):
    """The connection was lost before the request was written: OpenD never saw it."""


class FetchManyError(MoomooError):
    """Some symbols failed; ``frame`` holds every row of the symbols that did not.

    ``failures`` maps each failed code to its error.
    """

    def __init__(self, frame: pd.DataFrame, failures: dict[str, MoomooError]) -> None:
        self.frame = frame
        self.failures = failures
        detail = "; ".join(f"{code}: {error}" for code, error in failures.items())
        super().__init__(f"{len(failures)} of the symbols failed ({detail})")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.frame, self.failures))


class StoreError(MoomooError):
    """A store's file cannot be used: missing, a directory, not an SQLite file or not a store,
    damaged, read-only, or the disk is full. The message names the file and what to do; the
    ``sqlite3`` error behind it, if any, is the ``__cause__``."""


class StoreLockedError(StoreError):
    """Another sync holds the store: two syncs at once are refused rather than interleaved."""


class StoreBusyError(StoreError):
    """Another program held a write transaction on the store's file for longer than the
    store's ``wait``: the write that waited for it was not made."""


class StoreVersionError(StoreError):
    """A store file of a format this aiomoomoo cannot use: written by a newer aiomoomoo (refused
    before anything is written to it), an older one opened read-only (it must be migrated,
    which writes), or an older one that cannot be migrated."""
