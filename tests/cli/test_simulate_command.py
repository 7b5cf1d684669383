"""``aiomoomoo simulate``: the simulator as a process, and the command line around it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from aiomoomoo import __version__
from aiomoomoo.cli import main
from aiomoomoo.testing import OpenDSimulator

from ..with_simulator.conftest import connected

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


@asynccontextmanager
async def simulate(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, int]]:
    """Run ``python -m aiomoomoo simulate ARGS``; yield the process and where it listens."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiomoomoo",
        "simulate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        match = re.fullmatch(r"listening on (\S+):(\d+)\n", line.decode())
        assert match, f"unexpected first line {line!r}"
        yield process, match[1], int(match[2])
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def ended(
    process: asyncio.subprocess.Process, timeout: float = START_TIMEOUT
) -> tuple[bytes, bytes]:
    """``process``'s output once it exits; killed, not left running, if it has not in time."""
    try:
        return await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.anyio
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_simulate_serves_until_interrupted(signum: signal.Signals) -> None:
    async with simulate("--port", "0", "--quota", "3/1", "--seed", "5") as (process, host, port):
        assert host == "127.0.0.1"
        assert port != 0
        sim = OpenDSimulator(host, port)
        async with connected(sim) as raw:
            page = await raw.short_interest("US.AAPL")
            assert page.retType == 0
            # The command line's seed and quota reached the simulator.
            expected = OpenDSimulator(seed=5).history("US.AAPL")[0]
            assert page.s2c.usItemList[0].closePrice == expected.close_price
            assert (await raw.short_interest("US.AAPL")).retType == 0
            assert (await raw.short_interest("US.AAPL")).retType == 0
            limited = await raw.short_interest("US.AAPL")
            assert limited.retType == -1
            assert limited.retMsg == (
                "Get Short Interest is too frequent, request failed, "
                "no more than 3 times every 1 seconds."
            )

            process.send_signal(signum)
            stdout, stderr = await ended(process)
    assert process.returncode == 0, stderr.decode()
    assert stdout == b""
    assert b"Traceback" not in stderr


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.anyio
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
async def test_an_ipv6_address_prints_in_brackets() -> None:
    async with simulate("--host", "::1", "--port", "0") as (process, host, port):
        assert host == "[::1]"
        async with connected(OpenDSimulator("::1", port)) as raw:
            assert (await raw.short_interest("US.AAPL")).retType == 0
        process.send_signal(signal.SIGINT)
        await ended(process)
    assert process.returncode == 0


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_address_that_cannot_be_reached_prints_in_brackets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    assert main(["short-interest", "--host", "::1", "--port", str(port), "US.AAPL"]) == 1
    assert f"cannot connect to OpenD at [::1]:{port}: " in capsys.readouterr().err
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--host", "[::1]", "--port", str(port)]) == 1
    assert f"aiomoomoo simulate: cannot listen on [::1]:{port}: " in capsys.readouterr().err


@pytest.mark.anyio
async def test_simulate_options_reach_the_simulator() -> None:
    args = ["--port", "0", "--no-quota", "--keepalive-interval", "4", "--lang", "zh"]
    args += ["--publication-lag", "US=7"]
    async with simulate(*args) as (process, host, port):
        async with connected(OpenDSimulator(host, port)) as raw:
            assert (await raw.init_connect()).s2c.keepAliveInterval == 4
            assert (await raw.short_interest("US.NOPE")).retMsg == "未知股票"
            # On 2026-04-30 the US row of that day is not out yet (on 05-11), nor is that of
            # 04-15 for HK without a lag.
            us = (await raw.short_interest("US.AAPL", num=1)).s2c.usItemList[0]
            hk = (await raw.short_interest("HK.00700", num=1)).s2c.hkItemList[0]
            assert (us.timestampStr, hk.timestampStr) == ("2026-04-15", "2026-04-30")
            for _ in range(40):  # more than the default 30/30 quota would allow
                assert (await raw.short_interest("HK.00700", num=1)).retType == 0
        process.send_signal(signal.SIGINT)
        await ended(process)
    assert process.returncode == 0


@pytest.mark.anyio
async def test_bad_quota_exits_2_with_a_message_from_a_real_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiomoomoo",
        "simulate",
        "--quota",
        "abc",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stdout, stderr = await ended(process)
    assert process.returncode == 2
    assert stdout == b""
    assert b"argument --quota: quota 'abc' is not N/SECONDS, for example 30/30" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quota", "abc"], "argument --quota: quota 'abc' is not N/SECONDS"),
        (["--quota", "0/30"], "argument --quota: quota needs max_requests >= 1"),
        (["--quota", "3/1", "--no-quota"], "not allowed with argument --quota"),
        (["--port", "70000"], "argument --port: port '70000' is not a number from 0 to 65535"),
        (["--keepalive-interval", "60"], "argument --keepalive-interval: keep-alive interval"),
        (["--seed", "x"], "argument --seed: invalid int value"),
        (["--lang", "chs"], "argument --lang: invalid choice: 'chs'"),
        (["--publication-lag", "7"], "argument --publication-lag: publication lag '7' is not"),
        (["--publication-lag", "JP=1"], "publication_lag has an unknown market 'JP'"),
        (["--publication-lag", "US=99"], "publication_lag['US'] must be whole business days"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"aiomoomoo {__version__}\n"


def test_help_lists_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "simulate" in capsys.readouterr().out
    assert main(["simulate", "--help"]) == 0
    out = capsys.readouterr().out
    options = ("--host", "--port", "--quota", "--no-quota", "--seed", "--keepalive-interval")
    for option in (*options, "--lang", "--data"):
        assert option in out


def test_a_busy_port_exits_1_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"aiomoomoo simulate: cannot listen on 127.0.0.1:{port}" in captured.err


@pytest.mark.anyio
async def test_a_process_that_does_not_end_in_time_is_killed() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import time; time.sleep(60)",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    with pytest.raises(TimeoutError):
        await ended(process, timeout=0.2)
    assert process.returncode is not None


def test_the_publication_lag_by_name_or_by_market() -> None:
    from aiomoomoo.cli._simulate import _publication_lag

    assert _publication_lag("real") == {"US": 7, "HK": 5}
    assert _publication_lag(" None ") == {"US": 0, "HK": 0}
    assert _publication_lag("us=3, HK=0") == {"US": 3, "HK": 0}
