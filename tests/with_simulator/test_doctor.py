"""``aiomoomoo doctor``'s verdict for each gateway a user meets: a working OpenD, nothing
listening, something that is not OpenD, a gateway that never answers InitConnect, one that wants
encryption, one that is not logged in, and one that refuses every request for quota."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aiomoomoo import GlobalState, SlidingWindowLimiter
from aiomoomoo.cli import main
from aiomoomoo.cli._doctor import Check, diagnose, render
from aiomoomoo.testing import Faults, SimulatorThread

from ._fixtures import client_of, serving

# Short: a check that waits for a silent peer waits this long.
STEP = 0.5


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def verdicts(checks: list[Check]) -> list[bool | None]:
    return [check.passed for check in checks]


@contextlib.asynccontextmanager
async def not_opend() -> AsyncIterator[int]:
    """A port where a web server answers: what a wrong --port usually finds."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        with contextlib.suppress(OSError):
            await writer.drain()
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_a_working_gateway_passes_every_check_and_says_what_it_is() -> None:
    async with serving() as sim:
        checks = await diagnose(sim.host, sim.port, timeout=STEP * 10)
    assert verdicts(checks) == [True, True, True, True], render(checks)
    assert "server version 1011" in checks[1].detail
    assert "encryption none" in checks[1].detail
    assert "US Closed" in checks[2].detail
    assert "US.AAPL answered (newest row" in checks[3].detail


@pytest.mark.anyio
async def test_nothing_listening_fails_the_port_and_skips_the_rest() -> None:
    checks = await diagnose("127.0.0.1", closed_port(), timeout=STEP)
    assert verdicts(checks) == [False, None, None, None]
    assert "nothing listening" in checks[0].detail
    assert "start OpenD" in checks[0].advice


@pytest.mark.anyio
async def test_a_peer_that_is_not_opend_is_called_a_wrong_port() -> None:
    async with not_opend() as port:
        checks = await diagnose("127.0.0.1", port, timeout=STEP * 10)
    assert verdicts(checks) == [True, False, None, None]
    assert "does not speak OpenD's protocol" in checks[1].advice
    assert "check --port" in checks[1].advice


@pytest.mark.anyio
async def test_a_gateway_that_never_answers_init_connect() -> None:
    async with serving(faults=Faults(silent=True)) as sim:
        checks = await diagnose(sim.host, sim.port, timeout=STEP)
    assert verdicts(checks) == [True, False, None, None]
    assert "did not complete InitConnect" in checks[1].detail
    assert "got no answer" in checks[1].advice


@pytest.mark.anyio
async def test_a_gateway_that_wants_encryption_asks_for_the_key(pem: bytes, tmp_path: Path) -> None:
    async with serving(rsa_private_key=pem) as sim:
        plain = await diagnose(sim.host, sim.port, timeout=STEP * 10)
        path = tmp_path / "opend.pem"
        path.write_bytes(pem)
        keyed = await diagnose(sim.host, sim.port, rsa_private_key=str(path), timeout=STEP * 10)
    assert verdicts(plain) == [True, False, None, None]
    assert "OpenD expects encryption" in plain[1].advice
    assert "--rsa-private-key FILE" in plain[1].advice
    assert verdicts(keyed) == [True, True, True, True], render(keyed)
    assert "encryption aes-cbc" in keyed[1].detail


@pytest.mark.anyio
async def test_a_gateway_not_logged_in_is_told_to_log_in() -> None:
    async with serving(faults=Faults(logged_out=True)) as sim:
        checks = await diagnose(sim.host, sim.port, timeout=STEP * 10)
    assert verdicts(checks) == [True, True, False, None]
    assert "not logged in" in checks[2].detail
    assert "log OpenD in" in checks[2].advice


@pytest.mark.anyio
async def test_a_gateway_refusing_every_request_is_a_quota_failure() -> None:
    async with serving(faults=Faults(refuse_every=1)) as sim:
        checks = await diagnose(sim.host, sim.port, timeout=STEP * 10)
    assert verdicts(checks) == [True, True, True, False]
    assert checks[3].detail.startswith("refused for quota: Get Short Interest is too frequent")
    assert "shared limiter" in checks[3].advice


@pytest.mark.anyio
async def test_get_global_state_reads_logins_and_markets_without_a_quota_slot() -> None:
    async with serving() as sim, client_of(sim, rate_limit=(1, 60.0)) as client:
        state = await client.get_global_state()
        again = await client.get_global_state()
        limiter = client.rate_limiter
        assert isinstance(limiter, SlidingWindowLimiter)
        assert limiter.has_capacity()
        info = client.connection_info
        sim.faults.logged_out = True
        logged_out = await client.get_global_state()
    assert isinstance(state, GlobalState)
    assert again.quote_logged_in
    assert (state.quote_logged_in, state.trade_logged_in) == (True, False)
    assert state.markets == {m: "Closed" for m in ("HK", "US", "SH", "SZ", "HK_FUTURE")}
    assert state.server_version == 1011
    assert info is not None
    assert state.conn_id == info.conn_id
    assert not logged_out.quote_logged_in


def test_the_command_exits_0_only_when_every_check_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SimulatorThread(quota=None) as sim:
        assert main(["doctor", "--port", str(sim.port), "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 4
    assert main(["doctor", "--port", str(closed_port()), "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("[FAIL] port reachable: nothing listening on 127.0.0.1:")
    assert out.count("[skip]") == 3


def test_a_bad_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--timeout", "0"]) == 2
    assert "expected a number of seconds above 0" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_key_that_cannot_be_read_fails_init_connect_at_once(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    async with serving() as sim:
        checks = await diagnose(sim.host, sim.port, rsa_private_key=str(junk), timeout=STEP)
        assert sim.stats.connections == 1  # the port check's, and no InitConnect after it
    assert verdicts(checks) == [True, False, None, None]
    assert checks[1].detail.startswith("cannot use the RSA key")
