"""`OpenDSimulator`: OpenD for tests, speaking the real wire protocol over TCP and WebSocket.

It answers InitConnect, KeepAlive, GetGlobalState and short interest (3249) the way OpenD does,
enforces the request quota as a strict sliding window, and can misbehave on purpose (drop
connections, delay, split, reorder, push: see `Faults`) so clients can be tested against what a
real gateway does on a bad day.

The simulator itself only owns things and their lifetime: the `Universe` of histories, the
sans-IO `RequestHandler` that answers requests, and the transports that carry them (`TcpLink`,
and the WebSocket server of the ``websocket`` extra). `SimulatorThread` (in ``_thread.py``) runs
it on a thread of its own for synchronous code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._crypto import AesMode, RsaCipher, load_rsa_private_key
from .._security import parse_code
from ._data import rows_of
from ._faults import Faults
from ._handler import RequestHandler
from ._history import DEFAULT_AS_OF, HkRow, SymbolProfile, UsRow
from ._link import LinkSet
from ._stats import DEFAULT_LIMITS, DEFAULT_QUOTA, Limits, Quota, SimulatorStats
from ._tcp import TcpLink
from ._texts import Lang, check_lang
from ._universe import Universe, write_row

if TYPE_CHECKING:
    from ._websocket import WebSocketServer

__all__ = [
    "Faults",
    "OpenDSimulator",
    "Quota",
    "SimulatorStats",
    "write_row",
]

logger = logging.getLogger("aiomoomoo.testing")


class OpenDSimulator:
    """An asyncio TCP server that behaves like OpenD for the protocols aiomoomoo uses.

    Use it as an async context manager; ``port=0`` picks a free port, read it from ``port``
    afterwards. The built-in universe holds US.AAPL, US.TSLA, US.NVDA, US.SPY, US.BRK.B, US.MSFT,
    HK.00700, HK.09988, HK.00005, HK.02800 and HK.03690; `add_symbol` adds more.

    ``quota`` is the short-interest request quota shared by every connection (None for none),
    ``seed`` makes the generated histories and connection keys reproducible, ``faults`` the
    misbehaviour to inject, ``keepalive_interval`` what InitConnect tells clients, ``as_of`` the
    newest day published (`advance` moves it on) and ``clock`` the monotonic clock the quota
    uses. ``histories`` maps codes to your own rows, served instead of generated ones: each a
    DataFrame in the columns `aiomoomoo.Client.fetch_short_interest` returns, or a list of
    `UsRow` / `HkRow`, newest first. ``lang`` is the language of OpenD's own texts in failure
    replies, ``"en"`` or ``"zh"``, as OpenD's ``Lang`` setting. ``limits`` bound what clients
    may cost it: connections, timeouts, buffered bytes (see `Limits`).

    ``publication_lag`` publishes on the real schedule: business days by market, such as
    `PUBLICATION_LAGS` (``{"US": 7, "HK": 5}``), after which a generated row dated D becomes
    visible once ``as_of`` reaches D plus the lag; `history`, every reply and `advance` show
    only what is published. The default, None, is no lag: each row is public on its own date, so
    ``as_of`` is the newest row's date, as a test that pins histories expects.

    ``rsa_private_key`` (a PEM path or PEM bytes, 1024-bit) makes it an OpenD configured for
    encryption: InitConnect must come RSA-encrypted with that key, and when the client asks for
    encryption every later frame travels under AES, ``aes_mode="cbc"`` (with an IV, as current
    OpenD) or ``"ecb"`` (OpenD's FTAES-ECB, for clients that do not ask for CBC or older gateways).

    ``websocket_port`` also serves OpenD's WebSocket protocol, the official JavaScript SDK's, on
    that port of ``host`` (0 picks a free one; read it from ``websocket_port`` once started);
    it needs the ``websocket`` extra. ``websocket_key`` is the key its clients must log in with
    (None for none). Both transports share the quota, universe, faults and stats.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quota: Quota | None = DEFAULT_QUOTA,
        seed: int = 0,
        faults: Faults | None = None,
        keepalive_interval: int = 10,
        as_of: dt.date = DEFAULT_AS_OF,
        clock: Callable[[], float] = time.monotonic,
        rsa_private_key: str | os.PathLike[str] | bytes | None = None,
        aes_mode: AesMode = "cbc",
        websocket_port: int | None = None,
        websocket_key: str | None = None,
        histories: Mapping[str, object] | None = None,
        lang: Lang = "en",
        limits: Limits = DEFAULT_LIMITS,
        publication_lag: Mapping[str, int] | None = None,
    ) -> None:
        if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
            raise TypeError(f"as_of must be a datetime.date, got {as_of!r}")
        if histories is not None and not isinstance(histories, Mapping):
            raise TypeError(
                f"histories must map codes to rows or DataFrames, got {type(histories).__name__}"
            )
        if aes_mode not in ("cbc", "ecb"):
            raise ValueError(f"aes_mode must be 'cbc' or 'ecb', got {aes_mode!r}")
        if websocket_key is not None and (websocket_port is None or not websocket_key):
            raise ValueError(
                f"websocket_key {websocket_key!r} needs a websocket_port and must not be empty"
            )
        self.rsa: RsaCipher | None = (
            RsaCipher(load_rsa_private_key(rsa_private_key))
            if rsa_private_key is not None
            else None
        )
        self.aes_mode: AesMode = aes_mode
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {limits!r}")
        self.limits = limits
        self.host = host
        self.port = port
        self.universe = Universe(seed=seed, as_of=as_of, publication_lag=publication_lag)
        for code, history in (histories or {}).items():
            self.universe.add_symbol(code, rows=rows_of(code, history))
        self.handler = RequestHandler(
            self.universe,
            quota=quota,
            faults=faults,
            keepalive_interval=keepalive_interval,
            clock=clock,
            seed=seed,
            aes_mode=aes_mode,
            lang=lang,
        )
        self._server: asyncio.Server | None = None
        self._connections = LinkSet(self.handler.stats, limits.max_connections)
        self.websocket_port = websocket_port
        self.websocket_key = websocket_key
        self._websocket: WebSocketServer | None = None

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        websocket = "" if self.websocket_port is None else f" websocket={self.websocket_port}"
        return (
            f"<OpenDSimulator {state} {self.host}:{self.port}{websocket} quota={self.quota} "
            f"connections={len(self._connections)} requests={self.stats.requests}>"
        )

    # -- settings shared with the handler ---------------------------------------------------

    @property
    def quota(self) -> Quota | None:
        """The short-interest quota shared by every connection; None for none. Settable."""
        return self.handler.quota

    @quota.setter
    def quota(self, quota: Quota | None) -> None:
        self.handler.quota = quota

    @property
    def faults(self) -> Faults:
        """The misbehaviour injected from the next request on; settable."""
        return self.handler.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.handler.faults = faults

    @property
    def lang(self) -> Lang:
        """The language of OpenD's texts in failure replies, ``"en"`` or ``"zh"``. Settable."""
        return self.handler.lang

    @lang.setter
    def lang(self, lang: Lang) -> None:
        self.handler.lang = check_lang(lang)

    @property
    def stats(self) -> SimulatorStats:
        """What the simulator has seen since it was created."""
        return self.handler.stats

    @property
    def keepalive_interval(self) -> int:
        """The keep-alive interval InitConnect announces, in seconds. Settable."""
        return self.handler.keepalive_interval

    @keepalive_interval.setter
    def keepalive_interval(self, seconds: int) -> None:
        self.handler.keepalive_interval = seconds

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the quota counts with."""
        return self.handler.clock

    @property
    def seed(self) -> int:
        """The seed of the generated histories and connection ids."""
        return self.universe.seed

    @property
    def as_of(self) -> dt.date:
        """The simulator's today: generated rows public by it are served; `advance` moves it on."""
        return self.universe.as_of

    def advance(self, days: int, *, revise: bool = False) -> dict[str, int]:
        """Move ``as_of`` forward ``days`` days and publish the rows that fall due in them.

        Every generated code gains the rows that become public in the old ``as_of`` (excluded) to
        the new (included): with no publication lag, its reporting days in that span, US on
        FINRA's settlement dates (the 15th and the month's last business day), HK weekly; with
        one, the reporting days whose date plus the lag falls in it. The rows are those a
        simulator created with the new ``as_of`` would serve. With ``revise``, each generated
        code's newest row from before the move is revised first, its short position changed by a
        few percent as FINRA revises one (``shares_short`` for US, ``aggregated_short`` for HK,
        and the values derived from them). Rows you gave are left alone. Returns how many rows
        each generated code gained.
        """
        return self.universe.advance(days, revise=revise)

    def revise(self, code: str, date: dt.date, **fields: object) -> None:
        """Change fields of ``code``'s published row of ``date``, e.g. ``shares_short=...``.

        ``fields`` are `UsRow` / `HkRow` field names; KeyError if there is no row of ``date``.
        """
        self.universe.revise(parse_code(code).code, date, **fields)

    # -- universe ---------------------------------------------------------------------------

    @property
    def codes(self) -> list[str]:
        """Every code the simulator can serve."""
        return self.universe.codes

    def add_symbol(
        self,
        code: str,
        profile: SymbolProfile | None = None,
        *,
        rows: Sequence[UsRow] | Sequence[HkRow] | None = None,
    ) -> None:
        """Serve ``code``: a history generated from ``profile``, or exactly ``rows`` (newest first).

        Rows must match the code's market (``UsRow`` for US, ``HkRow`` for HK); a field set to
        None is left out of the reply, as OpenD leaves out fields it has no value for.
        """
        self.universe.add_symbol(code, profile, rows=rows)

    def history(self, code: str) -> list[UsRow] | list[HkRow]:
        """The full history served for ``code``, newest first; KeyError if it is not served."""
        return list(self.universe.get(parse_code(code).code).rows)  # type: ignore[return-value]

    # -- serving ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("OpenD simulator listening on %s:%d", self.host, self.port)
        if self.websocket_port is not None:
            try:
                await self._start_websocket(self.websocket_port)
            except BaseException:
                await self.close()
                raise

    async def _start_websocket(self, port: int) -> None:
        # Imported here: the websockets library is an optional extra.
        from ._websocket import WebSocketServer

        websocket = WebSocketServer(
            self.handler,
            self.host,
            port,
            key=self.websocket_key,
            links=self._connections,
            limits=self.limits,
        )
        await websocket.start()
        self._websocket = websocket
        self.websocket_port = websocket.port

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        websocket, self._websocket = self._websocket, None
        if websocket is not None:
            websocket.close()
        self.drop_connections()
        if server is not None:
            await server.wait_closed()
        if websocket is not None:
            await websocket.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connection_count(self) -> int:
        """Connections open right now."""
        return len(self._connections)

    @property
    def pending_bytes(self) -> int:
        """Bytes of replies waiting for clients to take them, over every connection."""
        return sum(link.pending for link in self._connections)

    def drop_connections(self) -> None:
        """Abort every open connection, as a crashing gateway would."""
        for connection in list(self._connections):
            connection.abort()

    def push_notify(self, desc: str = "simulated gateway event") -> None:
        """Push a Notify (1003) GtwEvent to every connection that finished InitConnect."""
        for connection in list(self._connections):
            if connection.session.conn_id:
                connection.push(self.handler.push(0, desc))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = TcpLink(self.handler, reader, writer, rsa=self.rsa, limits=self.limits)
        if not self._connections.admit(link):
            link.abort()
            return
        try:
            await link.serve()
        finally:
            self._connections.discard(link)
