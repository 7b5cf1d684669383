"""Encrypted connections end to end: aiomoomoo and the official SDK against the simulator.

Both sides hold the same 1024-bit RSA key: InitConnect travels under RSA, everything after under
AES-CBC or FTAES-ECB, whichever the simulator (as OpenD) picks. A recording proxy between client
and simulator shows what really crosses the wire: ciphertext only, with the header's SHA-1 over
the plaintext.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import logging
import math
import re
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Literal, Self

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aiomoomoo import HK_COLUMNS, US_COLUMNS, Client, ConnectError
from aiomoomoo._crypto import AesCipher, RsaCipher, load_rsa_private_key
from aiomoomoo._proto import InitConnect_pb2
from aiomoomoo._wire import ProtoId
from aiomoomoo.testing import Faults, OpenDSimulator, SimulatorThread

from ._fixtures import TIMEOUT, client_of, serving
from ._official import import_moomoo, quote_context
from .conftest import RawClient

AesMode = Literal["cbc", "ecb"]
MODES: tuple[AesMode, ...] = ("cbc", "ecb")
CODES = ("US.AAPL", "HK.00700")


@dataclass(frozen=True)
class Keys:
    """The RSA key client and simulator share, as PEM and as a file, and one they do not."""

    pem: bytes
    path: Path
    other_pem: bytes


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    def pem() -> bytes:
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        # PKCS#1, as the official SDK's set_init_rsa_file documents.
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    shared = pem()
    path = tmp_path_factory.mktemp("keys") / "opend_rsa.pem"
    path.write_bytes(shared)
    return Keys(pem=shared, path=path, other_pem=pem())


def columns_of(code: str) -> tuple[str, ...]:
    return US_COLUMNS if code.startswith("US.") else HK_COLUMNS


def expected(sim: OpenDSimulator, code: str) -> list[tuple[object, ...]]:
    """Every row of ``code``'s history, in frame column order."""
    columns = columns_of(code)
    return [tuple(getattr(row, column) for column in columns) for row in sim.history(code)]


def values(frame: pd.DataFrame, code: str) -> list[tuple[object, ...]]:
    """The cells of ``frame``, row by row, with None for a missing value."""
    return [
        tuple(None if pd.isna(cell) else cell for cell in row)
        for row in frame[list(columns_of(code))].itertuples(index=False, name=None)
    ]


def assert_no_key_material(text: str, pem: bytes) -> None:
    assert "-----BEGIN" not in text
    for line in pem.decode().splitlines():
        if line and not line.startswith("-----"):
            assert line not in text


# -- a proxy that records the wire -----------------------------------------------------------


@dataclass
class Link:
    """One proxied connection: the bytes the client sent and the bytes it received."""

    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)


class Recorder:
    """A loopback TCP proxy to ``target`` that keeps every byte it forwards, per connection."""

    def __init__(self, target: OpenDSimulator) -> None:
        self.target = target
        self.links: list[Link] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        # With the client closed, every link winds down as the EOF travels through it; one
        # that does not is cut, rather than cancelled (asyncio logs a cancelled handler).
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=TIMEOUT)
            if pending:
                for writer in self._writers:
                    writer.transport.abort()
                await asyncio.wait(pending)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        link = Link()
        self.links.append(link)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream = await asyncio.open_connection(
                self.target.host, self.target.port
            )
            self._writers.add(upstream)
            await asyncio.gather(
                self._pipe(reader, upstream, link.sent),
                self._pipe(upstream_reader, writer, link.received),
            )
        except OSError:
            pass  # the simulator is gone: the client sees the link close
        finally:
            for each in (writer, upstream):
                if each is not None:
                    each.close()
                    with contextlib.suppress(ConnectionError):
                        await each.wait_closed()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                record += data
                writer.write(data)
                await writer.drain()
        writer.close()


_HEADER = struct.Struct("<2sI2B2I20s8s")  # the 44-byte frame header


@dataclass(frozen=True)
class WireFrame:
    proto_id: int
    sha1: bytes
    body: bytes
    """The body as it crossed the wire."""


def wire_frames(stream: bytes | bytearray) -> list[WireFrame]:
    frames: list[WireFrame] = []
    offset = 0
    while offset < len(stream):
        magic, proto_id, _fmt, _ver, _serial, body_len, sha1, _reserved = _HEADER.unpack_from(
            stream, offset
        )
        assert magic == b"FT"
        start = offset + _HEADER.size
        body = stream[start : start + body_len]
        assert len(body) == body_len, "the recording ends inside a frame"
        frames.append(WireFrame(proto_id, sha1, bytes(body)))
        offset = start + body_len
    return frames


@dataclass(frozen=True)
class Decrypted:
    """What one recorded link carried, decrypted with the shared key and checked."""

    aes_key: str
    aes_iv: str | None
    plaintexts: list[bytes]


def decrypt_link(link: Link, rsa_cipher: RsaCipher, mode: AesMode) -> Decrypted:
    """Decrypt every frame of ``link`` as OpenD's peer would; check sizes, trailers and SHA-1s."""
    sent, received = wire_frames(link.sent), wire_frames(link.received)
    assert sent[0].proto_id == received[0].proto_id == ProtoId.INIT_CONNECT
    plaintexts: list[bytes] = []
    for frame in (sent[0], received[0]):
        assert len(frame.body) % 128 == 0  # RSA: whole 128-byte chunks
        plain = rsa_cipher.decrypt(frame.body)
        assert hashlib.sha1(plain).digest() == frame.sha1
        plaintexts.append(plain)
    s2c = InitConnect_pb2.Response.FromString(plaintexts[1]).s2c
    iv = s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None
    assert (iv is not None) == (mode == "cbc")
    aes = AesCipher(s2c.connAESKey.encode(), iv=iv.encode() if iv is not None else None)
    rest = sent[1:] + received[1:]
    assert rest, "nothing crossed the link after InitConnect"
    for frame in rest:
        plain = aes.decrypt(frame.body)
        if mode == "cbc":
            # PKCS#7: always at least one byte of padding.
            assert len(frame.body) == (len(plain) // 16 + 1) * 16
        else:
            # Zero padding to the block, then the plain trailer: 15 zeros and len % 16.
            assert len(frame.body) == math.ceil(len(plain) / 16) * 16 + 16
            assert frame.body[-16:] == bytes(15) + bytes([len(plain) % 16])
        assert hashlib.sha1(plain).digest() == frame.sha1
        plaintexts.append(plain)
    return Decrypted(s2c.connAESKey, iv, plaintexts)


@contextlib.asynccontextmanager
async def recorded_client(
    sim: OpenDSimulator, **options: Any
) -> AsyncIterator[tuple[Client, Recorder]]:
    """A client that reaches ``sim`` through a `Recorder`."""
    options.setdefault("rate_limit", None)
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("reconnect_delay", (0.01, 0.05))
    async with Recorder(sim) as recorder, Client("127.0.0.1", recorder.port, **options) as client:
        yield client, recorder


pytestmark = pytest.mark.anyio


# -- aiomoomoo on an encrypted connection ----------------------------------------------------


@pytest.mark.parametrize("source", ["path", "bytes"])
@pytest.mark.parametrize("mode", MODES)
async def test_client_fetches_full_histories_encrypted(
    keys: Keys, mode: AesMode, source: str
) -> None:
    key = keys.path if source == "path" else keys.pem
    async with (
        serving(rsa_private_key=keys.pem, aes_mode=mode) as sim,
        client_of(sim, rsa_private_key=key) as client,
    ):
        info = client.connection_info
        assert info is not None
        assert info.encryption == f"aes-{mode}"
        assert " encrypted " in repr(client)
        for code in CODES:
            frame = await client.fetch_short_interest(code)
            assert len(frame) > 100
            assert values(frame, code) == expected(sim, code)
        assert sim.stats.failed == 0
        assert sim.stats.connections == 1


async def test_an_unencrypted_client_has_encryption_none() -> None:
    async with serving() as sim, client_of(sim) as client:
        info = client.connection_info
        assert info is not None
        assert info.encryption == "none"
        assert "encrypted" not in repr(client)


@pytest.mark.parametrize("mode", MODES)
async def test_only_ciphertext_crosses_the_wire(keys: Keys, mode: AesMode) -> None:
    async with serving(rsa_private_key=keys.pem, aes_mode=mode) as sim:
        async with recorded_client(sim, rsa_private_key=keys.path) as (client, recorder):
            frame = await client.fetch_short_interest("US.AAPL")
            await client.get_short_interest("HK.00700", num=5)
        assert values(frame, "US.AAPL") == expected(sim, "US.AAPL")
        [link] = recorder.links
        newest_day = str(sim.history("US.AAPL")[0].timestamp_str).encode()
        wire = bytes(link.sent) + bytes(link.received)
        for plain in (b"AAPL", b"00700", newest_day, b"Python", b"aiomoomoo"):
            assert plain not in wire
        # Decrypted with the shared key, every body is what the protocol says it must be.
        decrypted = decrypt_link(link, RsaCipher(load_rsa_private_key(keys.pem)), mode)
        assert decrypted.aes_key.encode() not in wire
        assert any(b"AAPL" in plain for plain in decrypted.plaintexts)
        assert any(newest_day in plain for plain in decrypted.plaintexts)


async def test_without_a_key_the_same_bytes_are_readable() -> None:
    # The control for the test above: the proxy and the search would see plaintext.
    async with serving() as sim:
        async with recorded_client(sim) as (client, recorder):
            await client.fetch_short_interest("US.AAPL")
        [link] = recorder.links
        newest_day = str(sim.history("US.AAPL")[0].timestamp_str).encode()
        assert b"AAPL" in link.sent
        assert newest_day in link.received
        for frame in wire_frames(link.sent) + wire_frames(link.received):
            assert hashlib.sha1(frame.body).digest() == frame.sha1


@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_requests_survive_reconnects_encrypted(keys: Keys, mode: AesMode) -> None:
    # Every fourth short-interest request on a connection kills it: each reconnect is a new
    # RSA InitConnect and a new AES key, and 20 tasks keep landing on connections mid-flight.
    async with (
        serving(rsa_private_key=keys.pem, aes_mode=mode, faults=Faults(drop_after=3)) as sim,
        client_of(sim, rsa_private_key=keys.pem, retries=10) as client,
    ):
        codes = sim.codes
        pages = [(codes[i % len(codes)], 1 + 3 * i) for i in range(16)]
        walks = ["US.AAPL", "US.TSLA", "HK.00700", "HK.00005"]
        async with asyncio.TaskGroup() as group:
            page_tasks = [
                group.create_task(client.get_short_interest(code, num=num)) for code, num in pages
            ]
            walk_tasks = [group.create_task(client.fetch_short_interest(code)) for code in walks]
        for (code, num), page_task in zip(pages, page_tasks, strict=True):
            assert values(page_task.result().frame, code) == expected(sim, code)[:num]
        for code, walk_task in zip(walks, walk_tasks, strict=True):
            assert values(walk_task.result(), code) == expected(sim, code)
        assert sim.stats.dropped >= 5
        assert client.reconnects == sim.stats.connections - 1 >= 5
        info = client.connection_info
        assert info is not None
        assert info.encryption == f"aes-{mode}"


@pytest.mark.parametrize("mode", MODES)
async def test_keepalives_travel_encrypted(keys: Keys, mode: AesMode) -> None:
    # A KeepAlive the simulator could not decrypt would break the link and force a reconnect.
    async with (
        serving(rsa_private_key=keys.pem, aes_mode=mode) as sim,
        client_of(sim, rsa_private_key=keys.path, keepalive_interval=0.05) as client,
    ):
        first = client._connection
        await asyncio.sleep(0.5)  # three times the 0.165 s liveness limit
        assert sim.stats.keepalives >= 6
        assert client._connection is first
        assert client.reconnects == 0
        assert sim.stats.connections == 1
        page = await client.get_short_interest("US.AAPL", num=5)
        assert values(page.frame, "US.AAPL") == expected(sim, "US.AAPL")[:5]


# -- mismatches fail at connect time, quickly ------------------------------------------------


async def test_a_wrong_key_is_a_quick_connect_error_naming_the_rsa_key(keys: Keys) -> None:
    async with serving(rsa_private_key=keys.pem) as sim:
        start = time.monotonic()
        with pytest.raises(ConnectError, match="RSA private key") as info:
            async with Client(sim.host, sim.port, rsa_private_key=keys.other_pem):
                pass
        assert time.monotonic() - start < 5.0
        assert "broke off InitConnect" in str(info.value)
        assert_no_key_material(str(info.value), keys.other_pem)
        assert_no_key_material(str(info.value), keys.pem)


async def test_a_plain_client_gets_the_encrypting_simulators_message(keys: Keys) -> None:
    async with serving(rsa_private_key=keys.pem) as sim:
        start = time.monotonic()
        with pytest.raises(ConnectError, match="refused InitConnect") as info:
            async with Client(sim.host, sim.port):
                pass
        assert time.monotonic() - start < 5.0
        assert (
            "this OpenD requires encrypted connections: configure the client with its RSA "
            "private key" in str(info.value)
        )


async def test_an_encrypting_client_on_a_plain_simulator_is_a_quick_connect_error(
    keys: Keys,
) -> None:
    # A gateway without the key cannot even check the RSA-encrypted InitConnect (its SHA-1 is
    # over the plaintext), so it hangs up; the client says what to look at.
    async with serving() as sim:
        start = time.monotonic()
        with pytest.raises(ConnectError, match="same RSA private key") as info:
            async with Client(sim.host, sim.port, rsa_private_key=keys.path):
                pass
        assert time.monotonic() - start < 5.0
        assert "broke off InitConnect" in str(info.value)


async def test_a_plain_simulator_refuses_a_plaintext_request_for_encryption() -> None:
    # The simulator's own check: a readable InitConnect that asks for AES gets a retMsg.
    async with serving() as sim, RawClient.connect(sim.host, sim.port) as raw:
        request = InitConnect_pb2.Request()
        c2s = request.c2s
        c2s.clientVer = 300
        c2s.clientID = "aiomoomoo-tests"
        c2s.recvNotify = True
        c2s.packetEncAlgo = 2  # AES-CBC
        c2s.programmingLanguage = "Python"
        reply = await raw.request(ProtoId.INIT_CONNECT, request, InitConnect_pb2.Response)
        assert reply.retType == -1
        assert reply.retMsg == "this simulator is not configured for encryption"


@pytest.mark.parametrize("name", ["missing.pem", "garbage.pem"])
async def test_an_unreadable_key_fails_at_client_construction(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "garbage.pem":
        path.write_bytes(
            b"-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----"
        )
    with pytest.raises(ValueError, match=re.escape(f"RSA private key file '{path}'")):
        Client("127.0.0.1", 11111, rsa_private_key=path)
    with pytest.raises(ValueError, match="RSA private key file"):
        OpenDSimulator(rsa_private_key=path)


# -- secrets stay out of reprs and logs ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_keys_and_plaintext_never_reach_reprs_or_logs(
    keys: Keys, mode: AesMode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(
        rsa_private_key=keys.pem, aes_mode=mode, faults=Faults(drop_after=2, push_every=2)
    ) as sim:
        async with recorded_client(sim, rsa_private_key=keys.pem, retries=3) as (
            client,
            recorder,
        ):
            frame = await client.fetch_short_interest("US.AAPL")
            connection = client._connection
            reprs = [repr(client), repr(connection), repr(client.connection_info), repr(sim)]
        reprs.append(repr(client))
    assert values(frame, "US.AAPL") == expected(sim, "US.AAPL")
    assert len(recorder.links) >= 2  # the drops put reconnects, and their warnings, in the log
    assert "reconnecting" in caplog.text
    rsa_cipher = RsaCipher(load_rsa_private_key(keys.pem))
    decrypted = [decrypt_link(link, rsa_cipher, mode) for link in recorder.links]
    secrets = [d.aes_key for d in decrypted] + [d.aes_iv for d in decrypted if d.aes_iv]
    bodies = [plain for d in decrypted for plain in d.plaintexts if len(plain) >= 8]
    for text in [caplog.text, *reprs]:
        assert_no_key_material(text, keys.pem)
        for secret in secrets:
            assert secret not in text
        for body in bodies:
            assert body.hex() not in text
            assert repr(body)[2:-1] not in text
            assert body.decode("latin-1") not in text


# -- the official SDK with encryption on -----------------------------------------------------


@pytest.fixture(scope="module")
def moomoo() -> ModuleType:
    """The official SDK, imported without keeping the SIGINT handler it installs."""
    return import_moomoo()


@contextlib.contextmanager
def official_encryption(moomoo: ModuleType, key_file: Path) -> Iterator[None]:
    """Turn the official SDK's process-wide encryption on, and back to what it was afterwards."""
    sys_config = moomoo.SysConfig
    rsa_crypt = importlib.import_module(f"{moomoo.__name__}.common.sys_config").RsaCrypt
    saved = (
        sys_config.IS_PROTO_ENCRYPT,
        sys_config.INIT_RSA_FILE,
        sys_config.RSA_OBJ,
        rsa_crypt.CHIPPER,
    )
    try:
        sys_config.enable_proto_encrypt(True)
        sys_config.set_init_rsa_file(str(key_file))
        yield
    finally:
        sys_config.enable_proto_encrypt(False)
        # set_init_rsa_file() would store str(file): put the original values back as they were.
        (
            sys_config.IS_PROTO_ENCRYPT,
            sys_config.INIT_RSA_FILE,
            sys_config.RSA_OBJ,
            rsa_crypt.CHIPPER,
        ) = saved


def official_rows(moomoo: ModuleType, ctx: Any, code: str, num: int) -> list[tuple[object, ...]]:
    """Every row of ``code`` through the official client, following ``next_key`` to ``"-1"``."""
    us = code.startswith("US.")
    columns = list(columns_of(code))
    rows: list[tuple[object, ...]] = []
    next_key = None
    pages = 0
    while next_key != "-1":
        assert pages < 500, "next_key never reached -1"
        ret, us_df, hk_df = ctx.get_short_interest(code, next_key=next_key, num=num)
        assert ret == moomoo.RET_OK, us_df
        pages += 1
        df = us_df if us else hk_df
        next_key = df.attrs["next_key"]
        rows += zip(*(df[column].tolist() for column in columns), strict=True)
    return rows


# The official SDK calls Thread.setDaemon(), deprecated since Python 3.10, and reads the key
# file without closing it.
@pytest.mark.filterwarnings(r"ignore:setDaemon\(\) is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings(r"ignore:unclosed file .*opend_rsa\.pem:ResourceWarning")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_official_client_pages_through_an_encrypted_simulator(
    moomoo: ModuleType, keys: Keys, mode: AesMode
) -> None:
    sys_config = moomoo.SysConfig
    # Another seed per mode: the SDK keys its AES state by connID, process-wide.
    options: dict[str, Any] = {"rsa_private_key": keys.pem, "aes_mode": mode, "quota": None}
    with (
        SimulatorThread(seed=MODES.index(mode) + 11, **options) as sim,
        official_encryption(moomoo, keys.path),
        quote_context(moomoo, sim) as ctx,
    ):
        assert ctx.is_encrypt()
        for code in CODES:
            assert official_rows(moomoo, ctx, code, 50) == expected(sim, code)
        assert sim.stats.failed == 0
    assert sys_config.IS_PROTO_ENCRYPT is False
    assert sys_config.INIT_RSA_FILE == ""
    assert sys_config.RSA_OBJ is None
