"""The simulator's WebSocket transport, checked packet by packet with a minimal client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aiomoomoo._proto import (
    InitWebSocket_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo.cli import main
from aiomoomoo.testing import Faults, Limits, OpenDSimulator, Quota

from ._websocket import MAGIC, REQUEST, WsClient, logged_in
from .conftest import FakeClock, PeerClosed, connected, short_interest_request
from .test_cli_simulate import START_TIMEOUT, simulate

pytestmark = pytest.mark.anyio

KEY = "correct horse"


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_login_with_the_key_md5_gets_a_connection_id() -> None:
    async with OpenDSimulator(quota=None, websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port
        assert sim.websocket_port != sim.port
        assert f"{sim.port} websocket={sim.websocket_port} " in repr(sim)
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            before = int(time.time())
            packet, response = await client.login(KEY)
            assert (packet.cmd, packet.error, packet.error_text) == (1, 0, "")
            assert response.retType == 0
            assert response.s2c.connID > 0
            assert before <= response.s2c.serverTime <= int(time.time())
            assert sim.stats.connections == 1
            assert sim.stats.failed == 0


@pytest.mark.parametrize("sent", ["wrong key", None], ids=["wrong-key", "no-key"])
async def test_a_wrong_or_missing_key_fails_the_login_and_closes(sent: str | None) -> None:
    async with OpenDSimulator(quota=None, websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            packet, response = await client.login(sent)
            assert packet.cmd == 1
            assert packet.error != 0
            assert packet.error_text == "login failed"
            assert response.retType == -1
            assert "WebSocket key" in response.retMsg
            assert not response.s2c.connID
            with pytest.raises(PeerClosed):
                await client.receive()
            assert client.connection.close_code == 1008
        assert sim.stats.failed == 1


async def test_without_a_key_any_login_is_accepted() -> None:
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        for key in (None, "anything"):
            async with logged_in(sim.host, sim.websocket_port, key) as client:
                assert client.conn_id


async def test_requests_before_login_are_refused() -> None:
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            request = short_interest_request(11, "AAPL")
            packet, response = await client.request(3249, request, KeepAlive_pb2.Response)
            assert packet.error != 0
            assert (response.retType, response.retMsg) == (-1, "InitWebSocket must come first")
            assert sim.stats.requests == 0
            # The connection stays usable: logging in afterwards works.
            packet, _ = await client.login(None)
            assert packet.error == 0


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
async def test_paging_matches_the_history_and_echoes_64_bit_sections(code: str) -> None:
    async with (
        OpenDSimulator(quota=None, websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        pages = await client.walk(code, num=50)
        rows = sim.history(code)
        items = [item for page in pages for item in (page.s2c.usItemList or page.s2c.hkItemList)]
        assert [item.timestamp for item in items] == [row.timestamp for row in rows]
        assert [item.closePrice for item in items] == [row.close_price for row in rows]
        assert len(pages) == -(-len(rows) // 50)
        assert sim.stats.requests == len(pages)
        assert not client.skipped


async def test_replies_are_matched_by_section_even_out_of_order() -> None:
    faults = Faults(reply_delay=0.01, reply_jitter=0.2)
    async with (
        OpenDSimulator(quota=None, seed=3, faults=faults, websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        codes = ["US.AAPL", "US.TSLA", "HK.00700", "HK.09988", "US.NVDA", "HK.00005"]
        sections = {}
        for code in codes:
            market, symbol = code.split(".")
            request = short_interest_request(11 if market == "US" else 1, symbol, num=1)
            sections[await client.send(3249, request)] = code
        arrived = [await client.receive() for _ in codes]
        assert sorted(p.section for p in arrived) == sorted(sections)
        # With this seed the jitter reorders them: the test would prove nothing otherwise.
        assert [p.section for p in arrived] != list(sections)
        for packet in arrived:
            response = Qot_GetShortInterest_pb2.Response.FromString(packet.body)
            items = response.s2c.usItemList or response.s2c.hkItemList
            assert items[0].timestamp == sim.history(sections[packet.section])[0].timestamp


async def test_both_transports_share_one_quota_and_one_set_of_stats() -> None:
    clock = FakeClock()
    async with (
        OpenDSimulator(quota=Quota(4, 30), clock=clock, websocket_port=0) as sim,
        connected(sim) as tcp,
        logged_in(sim.host, sim.websocket_port) as ws,
    ):
        assert (await tcp.short_interest("US.AAPL")).retType == 0
        assert (await ws.short_interest("US.AAPL")).retType == 0
        assert (await tcp.short_interest("HK.00700")).retType == 0
        assert (await ws.short_interest("HK.00700")).retType == 0
        refused = await ws.short_interest("US.AAPL")
        assert refused.retType == -1
        assert "4" in refused.retMsg
        assert (await tcp.short_interest("US.AAPL")).retType == -1
        clock.advance(30)
        assert (await ws.short_interest("US.AAPL")).retType == 0
        assert sim.stats.connections == 2
        assert sim.stats.requests == 7
        assert sim.stats.rate_limited == 2


async def test_pushes_go_out_with_section_zero() -> None:
    async with (
        OpenDSimulator(quota=None, faults=Faults(push_every=1), websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        page = await client.short_interest("US.AAPL", num=2)
        assert page.retType == 0
        [push] = client.skipped
        assert (push.cmd, push.section, push.error) == (1003, 0, 0)
        notify = Notify_pb2.Response.FromString(push.body)
        assert notify.s2c.event.desc == "simulated push"

        sim.push_notify("gateway says hello")
        push = await client.receive()
        assert (push.cmd, push.section) == (1003, 0)
        assert Notify_pb2.Response.FromString(push.body).s2c.event.desc == "gateway says hello"


async def test_message_level_faults_apply() -> None:
    async with (
        OpenDSimulator(quota=None, faults=Faults(drop_after=1), websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        assert (await client.short_interest("US.AAPL")).retType == 0
        with pytest.raises(PeerClosed):
            await client.short_interest("US.AAPL")
        assert sim.stats.dropped == 1

        sim.faults = Faults(reply_delay=0.3)
        async with logged_in(sim.host, sim.websocket_port) as slow:
            started = time.monotonic()
            assert (await slow.short_interest("US.AAPL")).retType == 0
            # uvloop's timers count whole milliseconds and may fire up to 1 ms early.
            assert time.monotonic() - started >= 0.3 - 0.002

        sim.faults = Faults(answer_keepalive=False)
        async with logged_in(sim.host, sim.websocket_port) as deaf:
            keepalive = KeepAlive_pb2.Request()
            keepalive.c2s.time = 1
            await deaf.send(1004, keepalive)
            with pytest.raises(TimeoutError):
                await deaf.receive(timeout=0.3)


async def test_silence_and_a_close_after_login_apply_to_websocket_clients() -> None:
    async with OpenDSimulator(quota=None, faults=Faults(silent=True), websocket_port=0) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            await client.send(1, InitWebSocket_pb2.Request())
            with pytest.raises(TimeoutError):
                await client.receive(timeout=0.3)
        sim.faults = Faults(close_after_init_connect=True)
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            packet, response = await client.login(None)
            assert (packet.error, response.retType) == (0, 0)
            with pytest.raises(PeerClosed):
                await client.receive()
        sim.faults = Faults(wrong_proto_id_every=1)
        async with logged_in(sim.host, sim.websocket_port) as client:
            section = await client.send(3249, short_interest_request(11, "AAPL"))
            packet = await client.receive()
            assert (packet.cmd, packet.section) == (1004, section)


async def test_the_reorder_window_applies_to_websocket_replies() -> None:
    async with (
        OpenDSimulator(quota=None, faults=Faults(reorder_window=0.2), websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        request = short_interest_request(11, "AAPL", num=1)
        sent = [await client.send(3249, request) for _ in range(3)]
        arrived = [(await client.receive()).section for _ in sent]
        assert arrived == sent[::-1]


async def test_close_and_drop_connections_reach_websocket_clients() -> None:
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        async with logged_in(sim.host, sim.websocket_port) as client:
            assert sim.connection_count == 1
            sim.drop_connections()
            with pytest.raises(PeerClosed):
                await client.receive()
        async with logged_in(sim.host, sim.websocket_port) as client:
            await sim.close()
            with pytest.raises(PeerClosed):
                await client.receive()


HOSTILE_CLOSES: dict[str, tuple[str | bytes, int]] = {
    "text-message": ("ft-v1.0", 1003),
    "empty": (b"", 1002),
    "short-header": (MAGIC + b"\x00\x00\x0c\xb1", 1002),
    "wrong-magic": (b"ft-v2.0\x00" + bytes(12), 1002),
}


@pytest.mark.parametrize("name", list(HOSTILE_CLOSES))
async def test_malformed_packets_close_the_connection_with_a_reason(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    message, code = HOSTILE_CLOSES[name]
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        assert sim.websocket_port is not None
        async with connect(f"ws://{sim.host}:{sim.websocket_port}/") as connection:
            await connection.send(message)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(connection.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == code
        # The simulator is unharmed.
        async with logged_in(sim.host, sim.websocket_port) as client:
            assert (await client.short_interest("US.AAPL")).retType == 0
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\n"],
    ids=["not-http", "http-without-upgrade", "unfinished-request"],
)
async def test_a_failed_handshake_is_refused_quietly(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        assert sim.websocket_port is not None
        reader, writer = await asyncio.open_connection(sim.host, sim.websocket_port)
        writer.write(data)
        writer.write_eof()
        reply = await asyncio.wait_for(reader.read(), 5)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
        writer.close()
        assert sim.stats.connections == 0
    no_errors_logged(caplog)


async def test_unknown_commands_and_garbage_bodies_get_failed_replies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        OpenDSimulator(quota=None, websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        packet, response = await client.request(3001, b"", KeepAlive_pb2.Response)
        assert (packet.error, response.retType, response.errCode) == (0, -1, 4)
        assert "3001" in response.retMsg
        _, garbled = await client.request(3249, b"\xff\xff\xff", Qot_GetShortInterest_pb2.Response)
        assert (garbled.retType, garbled.retMsg) == (-1, "malformed Qot_GetShortInterest request")
        packet, _ = await client.request(2**32 - 1, b"", KeepAlive_pb2.Response)
        assert packet.cmd == 2**32 - 1
        # Still serving this very connection.
        assert (await client.short_interest("HK.00700")).retType == 0
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "websocket_key",
    ["é" * 32, b"\xff\xfe" * 16, "A" * 60_000],
    ids=["not-ascii", "not-utf-8", "huge"],
)
async def test_odd_keys_fail_the_login_politely(
    websocket_key: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # Field 4 of C2S, field 1 of Request, written by hand: protobuf would refuse non-UTF-8.
    key = websocket_key.encode() if isinstance(websocket_key, str) else websocket_key
    c2s = b"\x22" + varint(len(key)) + key
    body = b"\x0a" + varint(len(c2s)) + c2s
    async with OpenDSimulator(quota=None, websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            await client.send(1, body)
            # Requests right behind a failed login go unanswered: only the login's reply comes.
            await client.send(3249, short_interest_request(11, "AAPL"))
            packet = await client.receive()
            assert (packet.cmd, packet.error) == (1, 1)
            response = InitWebSocket_pb2.Response.FromString(packet.body)
            assert "does not match" in response.retMsg
            with pytest.raises(PeerClosed):
                await client.receive()
        assert sim.stats.requests == 0
    no_errors_logged(caplog)


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def test_a_garbage_login_fails_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    async with OpenDSimulator(quota=None, websocket_port=0) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            await client.send(1, b"\x0a\xff\xff")
            packet = await client.receive()
            assert packet.error != 0
            response = InitWebSocket_pb2.Response.FromString(packet.body)
            assert response.retMsg == "malformed InitWebSocket request"
            with pytest.raises(PeerClosed):
                await client.receive()
    no_errors_logged(caplog)


async def test_a_client_that_never_logs_in_is_dropped() -> None:
    limits = Limits(handshake_timeout=0.2, idle_timeout=None)
    async with OpenDSimulator(quota=None, websocket_port=0, limits=limits) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as idle:
            with pytest.raises(PeerClosed):
                await idle.receive(timeout=5)
        async with logged_in(sim.host, sim.websocket_port) as client:
            # Past the deadline, a logged-in client stays.
            with pytest.raises(TimeoutError):
                await client.receive(timeout=0.5)
            assert (await client.short_interest("US.AAPL")).retType == 0


async def test_idleness_applies_before_and_after_the_login() -> None:
    # As on TCP and as `Limits` says: a logged-in client that stays silent is closed too.
    limits = Limits(handshake_timeout=None, idle_timeout=0.3)
    async with OpenDSimulator(quota=None, websocket_port=0, limits=limits) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as idle:
            await idle.send(3249, short_interest_request(11, "AAPL"))  # refused: not logged in
            assert (await idle.receive()).error != 0
            with pytest.raises(PeerClosed):
                await idle.receive(timeout=5)
        async with logged_in(sim.host, sim.websocket_port) as client:
            assert (await client.short_interest("US.AAPL")).retType == 0
            with pytest.raises(PeerClosed):
                await client.receive(timeout=5)


async def test_silent_websocket_clients_never_hold_the_shared_connection_cap() -> None:
    # Before, logged-in WebSocket clients were exempt from idle_timeout: enough of them held
    # every connection the cap allows for ever, and TCP clients were refused.
    limits = Limits(max_connections=2, idle_timeout=0.3)
    async with OpenDSimulator(quota=None, websocket_port=0, limits=limits) as sim:
        assert sim.websocket_port is not None
        async with (
            logged_in(sim.host, sim.websocket_port) as first,
            logged_in(sim.host, sim.websocket_port) as second,
        ):
            for silent in (first, second):
                with pytest.raises(PeerClosed):
                    await silent.receive(timeout=5)
            async with connected(sim) as tcp:
                assert (await tcp.short_interest("US.AAPL")).retType == 0
        assert sim.stats.refused_connections == 0


async def test_a_connection_that_never_upgrades_does_not_delay_close() -> None:
    # A TCP connection to the WebSocket port that never sends the HTTP upgrade: closing the
    # simulator waited for the handshake timeout (9.7 s of the default 10 s) before; now at once.
    limits = Limits(handshake_timeout=30.0)
    sim = OpenDSimulator(quota=None, websocket_port=0, limits=limits)
    await sim.start()
    assert sim.websocket_port is not None
    reader, writer = await asyncio.open_connection(sim.host, sim.websocket_port)
    try:
        await asyncio.sleep(0.05)  # the server has accepted it
        async with asyncio.timeout(5):  # the handshake timeout is 30 s
            await sim.close()
        assert await reader.read() == b""  # dropped, not left open
    finally:
        writer.close()


async def test_one_connection_limit_over_both_transports() -> None:
    async with (
        OpenDSimulator(quota=None, websocket_port=0, limits=Limits(max_connections=2)) as sim,
        connected(sim) as tcp,
        logged_in(sim.host, sim.websocket_port) as ws,
    ):
        assert sim.connection_count == 2
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as refused:
            with pytest.raises(PeerClosed):
                await refused.receive()
            assert refused.connection.close_code == 1013  # try again later
        assert sim.stats.refused_connections == 1
        assert (await tcp.short_interest("US.AAPL")).retType == 0
        assert (await ws.short_interest("US.AAPL")).retType == 0


async def test_oversized_messages_are_refused() -> None:
    limits = Limits(max_request_size=1000)
    async with OpenDSimulator(quota=None, websocket_port=0, limits=limits) as sim:
        assert sim.websocket_port is not None
        async with logged_in(sim.host, sim.websocket_port) as client:
            # A body of exactly max_request_size is still a request (a failed one).
            packet, _ = await client.request(3249, bytes(1000), KeepAlive_pb2.Response)
            assert packet.error == 0
        async with connect(f"ws://{sim.host}:{sim.websocket_port}/", max_size=None) as connection:
            await connection.send(REQUEST.pack(MAGIC, 1, 1) + bytes(1001))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(connection.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009  # message too big


def test_no_websocket_unless_asked_and_the_library_stays_unimported() -> None:
    script = (
        "import asyncio, sys\n"
        "from aiomoomoo.testing import OpenDSimulator\n"
        "async def main():\n"
        "    async with OpenDSimulator(quota=None) as sim:\n"
        "        assert sim.websocket_port is None\n"
        "asyncio.run(main())\n"
        "assert 'websockets' not in sys.modules, 'websockets imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


async def test_simulate_command_serves_websocket_beside_tcp() -> None:
    args = ("--port", "0", "--websocket-port", "0", "--websocket-key", KEY, "--no-quota")
    async with simulate(*args) as (process, host, port):
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        match = re.fullmatch(r"websocket listening on (\S+):(\d+)\n", line.decode())
        assert match, f"unexpected second line {line!r}"
        assert match[1] == host
        assert int(match[2]) not in (0, port)
        async with WsClient.connect(host, int(match[2])) as client:
            packet, _ = await client.login("not " + KEY)
            assert packet.error != 0
        async with logged_in(host, int(match[2]), KEY) as client:
            assert (await client.short_interest("US.AAPL")).retType == 0
        async with connected(OpenDSimulator(host, port)) as tcp:
            assert (await tcp.short_interest("US.AAPL")).retType == 0
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


@pytest.mark.parametrize(
    "args",
    [["--websocket-key", KEY], ["--websocket-port", "0", "--websocket-key", ""]],
    ids=["key-without-port", "empty-key"],
)
def test_simulate_command_refuses_a_key_it_cannot_use(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["simulate", "--port", "0", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--websocket-key needs --websocket-port and must not be empty" in captured.err


def test_a_key_without_a_websocket_port_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="websocket_key 'k' needs a websocket_port"):
        OpenDSimulator(websocket_key="k")
    with pytest.raises(ValueError, match="must not be empty"):
        OpenDSimulator(websocket_port=0, websocket_key="")


async def test_a_client_that_never_reads_stops_being_read() -> None:
    sent = 20_000
    async with (
        OpenDSimulator(quota=None, websocket_port=0) as sim,
        logged_in(sim.host, sim.websocket_port) as client,
    ):
        [link] = sim._connections
        request = short_interest_request(11, "AAPL", num=50).SerializeToString()
        for section in range(1, sent + 1):
            await client.send(3249, request, section=section)
        # Let the simulator answer all it will: until its count stops moving.
        served = -1
        while served != sim.stats.requests:
            served = sim.stats.requests
            await asyncio.sleep(0.3)
        # Without back-pressure it would answer all 20,000 (~70 MB of replies) into its memory.
        assert served < sent / 2
        assert link.pending <= link.max_pending + 64 * 1024
        # Neither side reads any more, so a close handshake would only wait for its timeout.
        sim.drop_connections()
        client.connection.transport.abort()


async def test_a_busy_websocket_port_fails_start_and_leaves_nothing_listening() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        sim = OpenDSimulator(quota=None, websocket_port=busy)
        with pytest.raises(OSError, match="address already in use"):
            await sim.start()
        assert sim.port != 0
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(sim.host, sim.port)


def test_without_the_library_the_error_names_the_extra() -> None:
    script = (
        "import asyncio, sys\n"
        "sys.modules['websockets'] = None  # as if not installed\n"
        "from aiomoomoo.testing import OpenDSimulator\n"
        "async def main():\n"
        "    async with OpenDSimulator(quota=None, websocket_port=0):\n"
        "        pass\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'aiomoomoo[websocket]'" in result.stdout


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    login=st.booleans(),
    cmd=st.sampled_from([0, 1, 2, 1001, 1002, 1003, 1004, 3249, 2**32 - 1]),
    section=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=300),
)
async def test_any_packet_gets_a_reply_or_a_close_never_an_error(
    caplog: pytest.LogCaptureFixture, login: bool, cmd: int, section: int, body: bytes
) -> None:
    caplog.clear()
    async with OpenDSimulator(quota=None, websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port is not None
        async with WsClient.connect(sim.host, sim.websocket_port) as client:
            if login:
                assert (await client.login(KEY))[0].error == 0
            await client.send(cmd, body, section=section)
            try:
                packets = [await client.receive(timeout=5)]
            except PeerClosed:
                packets = []
            for packet in packets:
                assert packet.section in (section, 0)
            # The connection is still answered, or closed: never left hanging.
            if packets and packets[0].error == 0:
                keepalive = KeepAlive_pb2.Request()
                keepalive.c2s.time = 1
                with contextlib.suppress(PeerClosed):
                    await client.request(1004, keepalive, KeepAlive_pb2.Response)
    no_errors_logged(caplog)


def test_simulate_command_without_the_library_names_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['websockets'] = None  # as if not installed\n"
        "from aiomoomoo.cli import main\n"
        "sys.exit(main(['simulate', '--port', '0', '--websocket-port', '0']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "pip install 'aiomoomoo[websocket]'" in result.stderr
    assert "Traceback" not in result.stderr
