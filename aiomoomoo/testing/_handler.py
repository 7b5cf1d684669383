"""OpenD's request handling, sans-IO: one request in, the replies to send out.

The handler knows no socket, framing or encryption, so every transport (TCP in `._tcp`, a
WebSocket beside it) shares one quota, one universe, one set of faults and one `SimulatorStats`.
A transport decodes a request from its stream, hands it over and sends what comes back in its
own framing::

    session = handler.open_session()  # one per client connection
    answer = handler.handle(session, proto_id, serial, body, fmt=ProtoFmt.PROTOBUF)
    for reply in answer.replies:  # in order, after holding them answer.delay seconds
        send(reply.proto_id, reply.serial, reply.body, reply.fmt)
    if answer.close:  # once the replies have gone out (at once when there are none)
        close_the_connection()

``Session``, ``Answer`` and ``Reply`` live in `._messages`. ``body`` is the plaintext request
body, protobuf or (``fmt=ProtoFmt.JSON``) JSON; replies take the request's format. Nothing a
client sends makes `RequestHandler.handle` raise: a request that cannot be parsed, or holds a
value out of range, gets a failure reply. Message-level faults (`Faults` ``drop_after``,
``poison_codes``, ``silent``, ``close_after_init_connect``, delays, pushes, a wrong proto id,
refusals, unanswered KeepAlives) come out of it as `Answer` fields and replies; the
stream-level ones (``split_writes``, ``trickle``, ``corrupt_every``) are the transport's.
A transport built on `._link.Link` gets delays, the reorder window and back-pressure for free.

`RequestHandler.push` builds a Notify (1003) reply for a push the server starts itself, and
`RequestHandler.login` gives a session its connection id without InitConnect, for a transport
whose own handshake (OpenD's ``InitWebSocket``) stands in for it.

Encryption is the TCP transport's, but InitConnect's reply depends on it: the transport sets
`Session.encryption_required` (an RSA key is configured) and `Session.rsa_request` (this
InitConnect came RSA-encrypted); after a successful InitConnect the session holds
``rsa_reply`` (send the reply under RSA) and the AES key and IV for every frame after it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Final

from google.protobuf.message import Message

from .._proto import (
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from .._security import Market
from .._wire import ProtoId
from . import _texts
from ._faults import Faults
from ._messages import RET_OK, Answer, Reply, Session, encode, fail, parse, quote
from ._stats import DEFAULT_QUOTA, Quota, QuotaWindow, SimulatorStats
from ._texts import Lang
from ._universe import Universe, write_row

__all__ = ["Answer", "Reply", "RequestHandler", "Session"]
_SERVER_VERSION: Final = 1011
_DEFAULT_NUM: Final = 10
_MAX_NUM: Final = 50
_ERR_PARAM: Final = 1
_ERR_UNKNOWN_SECURITY: Final = 2
_ERR_RATE_LIMIT: Final = 3
_ERR_UNSUPPORTED: Final = 4
_ERR_NOT_LOGGED_IN: Final = 5
_NO_ENCRYPTION: Final = -1  # Common.PacketEncAlgo_None
_AES_CBC: Final = 2  # Common.PacketEncAlgo_AES_CBC
# A reply of another request's kind, for Faults.wrong_proto_id_every.
_WRONG_PROTO_ID: Final = ProtoId.KEEP_ALIVE


class _Drop(Exception):
    """Close the connection without a reply."""


class RequestHandler:
    """OpenD's answers to InitConnect, KeepAlive, GetGlobalState and short interest (3249).

    ``universe`` holds the histories, ``quota`` the short-interest quota shared by every session
    (None for none), ``faults`` the message-level misbehaviour, ``keepalive_interval`` what
    InitConnect announces, ``clock`` the monotonic clock of the quota, ``seed`` seeds connection
    ids and keys, ``aes_mode`` is the AES flavour offered to encrypting clients and ``lang``
    the language of OpenD's texts (``"en"`` or ``"zh"``). ``quota``, ``faults``, ``lang`` and
    ``stats`` may be read and replaced at any time.
    """

    def __init__(
        self,
        universe: Universe,
        *,
        quota: Quota | None = DEFAULT_QUOTA,
        faults: Faults | None = None,
        keepalive_interval: int = 10,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        aes_mode: str = "cbc",
        lang: Lang = "en",
    ) -> None:
        self.lang: Lang = _texts.check_lang(lang)
        self.universe = universe
        self.quota = quota
        self.faults = faults if faults is not None else Faults()
        self.keepalive_interval = keepalive_interval
        self.clock = clock
        self.seed = seed
        self.aes_mode = aes_mode
        self.stats = SimulatorStats()
        self._window = QuotaWindow()
        self._strict_window = QuotaWindow()
        self._random = random.Random(seed)
        self._next_conn_id = 7_000_000_000_000_000_000 + self._random.randrange(1_000_000)
        self._methods: dict[int, Callable[[Session, bytes, int], Message]] = {
            ProtoId.INIT_CONNECT: self._init_connect,
            ProtoId.KEEP_ALIVE: self._keep_alive,
            ProtoId.GET_GLOBAL_STATE: self._global_state,
            ProtoId.GET_SHORT_INTEREST: self._short_interest,
        }

    # -- sessions ---------------------------------------------------------------------------

    def open_session(self, *, encryption_required: bool = False) -> Session:
        """A new connection's state; counts it in ``stats.connections``."""
        self.stats.connections += 1
        return Session(encryption_required=encryption_required)

    def login(self, session: Session) -> int:
        """Give ``session`` a connection id, as InitConnect would; return it."""
        if not session.conn_id:
            self._next_conn_id += 1 + self._random.randrange(1000)
            session.conn_id = self._next_conn_id
        return session.conn_id

    def push(self, serial: int = 0, desc: str = "simulated gateway event") -> Reply:
        """A Notify (1003) gateway event carrying ``desc``; counts it in ``stats.pushes``."""
        self.stats.pushes += 1
        push = Notify_pb2.Response(retType=RET_OK)
        push.s2c.type = Notify_pb2.NotifyType_GtwEvent
        push.s2c.event.eventType = Notify_pb2.GtwEventType_None
        push.s2c.event.desc = desc
        return Reply(ProtoId.NOTIFY, serial, push.SerializeToString())

    # -- requests ---------------------------------------------------------------------------

    def handle(
        self, session: Session, proto_id: int, serial: int, body: bytes, *, fmt: int = 0
    ) -> Answer:
        """Answer one request of ``session``: see the module docstring for what comes back."""
        faults = self.faults
        stats = self.stats
        if faults.silent:
            return Answer()
        method = self._methods.get(proto_id)
        if method is None:
            response: Message = fail(
                KeepAlive_pb2.Response(),
                f"proto id {proto_id} is not supported by the aiomoomoo OpenD simulator "
                "(it serves 1001, 1002, 1004 and 3249)",
                _ERR_UNSUPPORTED,
            )
        elif proto_id != ProtoId.INIT_CONNECT and not session.conn_id:
            response = fail(KeepAlive_pb2.Response(), "InitConnect must come first", _ERR_PARAM)
        else:
            if proto_id == ProtoId.GET_SHORT_INTEREST:
                if (
                    faults.drop_after is not None
                    and session.short_interest_count >= faults.drop_after
                ):
                    stats.dropped += 1
                    return Answer(close=True)
                session.short_interest_count += 1
            elif proto_id == ProtoId.KEEP_ALIVE and not faults.answer_keepalive:
                stats.keepalives += 1
                return Answer()
            try:
                response = method(session, body, fmt)
            except _Drop:
                stats.dropped += 1
                return Answer(close=True)
        ok = response.retType == RET_OK  # type: ignore[attr-defined]
        if not ok:
            stats.failed += 1
        reply_id = proto_id
        count = session.short_interest_count
        if proto_id == ProtoId.GET_SHORT_INTEREST:
            every = faults.wrong_proto_id_every
            if every and count % every == 0:
                reply_id = _WRONG_PROTO_ID
        replies = [Reply(reply_id, serial, encode(response, fmt), fmt)]
        every = faults.push_every
        if proto_id == ProtoId.GET_SHORT_INTEREST and every and count % every == 0:
            replies.insert(0, self.push(serial, "simulated push"))
        delay = faults.reply_delay
        if faults.reply_jitter:
            delay += self._random.uniform(0, faults.reply_jitter)
        close = proto_id == ProtoId.INIT_CONNECT and ok and faults.close_after_init_connect
        return Answer(replies, delay=delay, close=close)

    def _init_connect(self, session: Session, body: bytes, fmt: int) -> Message:
        request = InitConnect_pb2.Request()
        response = InitConnect_pb2.Response()
        if not parse(body, fmt, request):
            return fail(response, "malformed InitConnect request", _ERR_PARAM)
        algorithm = request.c2s.packetEncAlgo if request.c2s.HasField("packetEncAlgo") else None
        wants_encryption = algorithm != _NO_ENCRYPTION
        if not session.encryption_required:
            if algorithm is not None and wants_encryption:
                return fail(response, "this simulator is not configured for encryption", _ERR_PARAM)
        elif not session.rsa_request:
            return fail(
                response,
                "this OpenD requires encrypted connections: configure the client with its RSA "
                "private key",
                _ERR_PARAM,
            )
        else:
            # As OpenD: the reply goes back under RSA when the client asked for encryption, and
            # with no algorithm named OpenD picks its FTAES-ECB.
            session.rsa_reply = wants_encryption
        self.login(session)
        response.retType = RET_OK
        s2c = response.s2c
        s2c.serverVer = _SERVER_VERSION
        s2c.loginUserID = 10_000_000 + self.seed
        s2c.connID = session.conn_id
        s2c.connAESKey = f"{self._random.getrandbits(64):016X}"
        s2c.keepAliveInterval = self.keepalive_interval
        if session.rsa_reply:
            session.aes_key = s2c.connAESKey.encode()
            session.aes_iv = None
            if self.aes_mode == "cbc" and algorithm == _AES_CBC:
                s2c.aesCBCiv = f"{self._random.getrandbits(64):016x}"
                session.aes_iv = s2c.aesCBCiv.encode()
        return response

    def _keep_alive(self, session: Session, body: bytes, fmt: int) -> Message:
        self.stats.keepalives += 1
        request = KeepAlive_pb2.Request()
        response = KeepAlive_pb2.Response()
        if not parse(body, fmt, request):
            return fail(response, "malformed KeepAlive request", _ERR_PARAM)
        response.retType = RET_OK
        response.s2c.time = int(time.time())
        return response

    def _global_state(self, session: Session, body: bytes, fmt: int) -> Message:
        request = GetGlobalState_pb2.Request()
        response = GetGlobalState_pb2.Response()
        if not parse(body, fmt, request):
            return fail(response, "malformed GetGlobalState request", _ERR_PARAM)
        response.retType = RET_OK
        s2c = response.s2c
        closed = 6  # QotMarketState_Closed: the simulator's markets never trade
        s2c.marketHK = s2c.marketUS = s2c.marketSH = s2c.marketSZ = s2c.marketHKFuture = closed
        s2c.qotLogined = not self.faults.logged_out
        s2c.trdLogined = False
        s2c.serverVer = _SERVER_VERSION
        s2c.serverBuildNo = 1
        s2c.time = int(time.time())
        s2c.localTime = time.time()
        s2c.connID = session.conn_id
        return response

    def _short_interest(self, session: Session, body: bytes, fmt: int) -> Message:
        stats = self.stats
        stats.requests += 1
        request = Qot_GetShortInterest_pb2.Request()
        response = Qot_GetShortInterest_pb2.Response()
        if not parse(body, fmt, request):
            return fail(response, "malformed Qot_GetShortInterest request", _ERR_PARAM)
        c2s = request.c2s
        market = c2s.security.market
        symbol: str | bytes = c2s.security.code
        code = ""
        if market in (Market.HK, Market.US):
            if isinstance(symbol, bytes):  # proto2 hands over a string that is not UTF-8 as bytes
                symbol = symbol.decode("utf-8", "replace")
            code = f"{Market(market).name}.{symbol}"
            if code in self.faults.poison_codes:
                raise _Drop
        if self.faults.logged_out:
            return fail(response, _texts.not_logged_in(self.lang), _ERR_NOT_LOGGED_IN)
        refused = self._over_quota(self.clock())
        if refused is not None:
            stats.rate_limited += 1
            return fail(response, _texts.rate_limited(self.lang, refused), _ERR_RATE_LIMIT)
        num = c2s.num if c2s.HasField("num") else _DEFAULT_NUM
        if not 1 <= num <= _MAX_NUM:
            return fail(response, f"num must be between 1 and {_MAX_NUM}, got {num}", _ERR_PARAM)
        if market not in (Market.HK, Market.US):
            return fail(
                response,
                f"short interest covers HK and US securities only, not market {market}",
                _ERR_PARAM,
            )
        try:
            history = self.universe.get(code)
        except KeyError:
            return fail(response, _texts.unknown_stock(self.lang), _ERR_UNKNOWN_SECURITY)
        start = 0
        next_key: str | bytes = c2s.nextKey if c2s.HasField("nextKey") else ""
        if isinstance(next_key, bytes):
            return fail(
                response, f"invalid nextKey {quote(next_key)}: it is not UTF-8 text", _ERR_PARAM
            )
        if next_key == "-1":
            start = len(history.rows)
        elif next_key:
            found = history.start_after(next_key)
            if found is None:
                return fail(
                    response,
                    f"invalid nextKey {quote(next_key)}: pass the nextKey of the previous page "
                    "(digits, or @ and digits), or none for the first page",
                    _ERR_PARAM,
                )
            start = found
        end = min(start + num, len(history.rows))
        response.retType = RET_OK
        s2c = response.s2c
        items = s2c.usItemList if history.market is Market.US else s2c.hkItemList
        for row in history.rows[start:end]:
            write_row(items.add(), row)
        s2c.nextKey = history.key_after(end)
        return response

    def _over_quota(self, now: float) -> Quota | None:
        """The quota to quote if a short-interest request at ``now`` is refused, else None."""
        faults, quota = self.faults, self.quota
        strict = faults.strict_quota
        if faults.refuse_every and self.stats.requests % faults.refuse_every == 0:
            return quota or strict or DEFAULT_QUOTA
        if not self._window.admits(quota, now):
            return quota
        if not self._strict_window.admits(strict, now):
            return quota or strict
        if quota is not None:
            self._window.record(now)
        if strict is not None:
            self._strict_window.record(now)
        self.stats.accept(now)
        return None
