"""``aiomoomoo short-interest`` in-process, as a person at a terminal meets it: the per-market
compact view, the progress display with the quota wait, the format taken from ``-o``, a bad output
path caught before fetching, Ctrl-C, and a hostile gateway whose text must never reach the
terminal raw.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aiomoomoo._proto import InitConnect_pb2, Qot_GetShortInterest_pb2
from aiomoomoo._wire import FrameDecoder, ProtoId, encode_frame
from aiomoomoo.cli import main
from aiomoomoo.cli._progress import ProgressDisplay
from aiomoomoo.cli._terminal import RICH_HINT
from aiomoomoo.testing import OpenDSimulator

from ._commands import assert_same_data, at, closed_port, expected, read_csv, run

REFERENCE = OpenDSimulator()
RICH_MODULES = ("rich", "rich.box", "rich.console", "rich.progress", "rich.table", "rich.text")
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[1;1H\r\n all symbols fetched OK\u202e\x9b2J"
RAW = ("\x1b]", "\x1b[2J", "\x1b[1;1H", "\r\n all", "\u202e", "\x9b", "\x07")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd


@pytest.fixture(params=["rich", "plain"])
def renderer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once with rich and once as an install without the ``cli`` extra."""
    if request.param == "rich":
        pytest.importorskip("rich")
    else:
        for name in RICH_MODULES:
            monkeypatch.setitem(sys.modules, name, None)
    return str(request.param)


def terminals(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeTerminal, FakeTerminal]:
    """stdout and stderr replaced by terminals 100 columns wide (in the test itself: pytest's
    capturing puts its own streams back between a fixture and the test)."""
    out, err = FakeTerminal(1), FakeTerminal(2)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((100, 24)))
    monkeypatch.setenv("COLUMNS", "100")
    return out, err


def without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RICH_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


# -- the terminal view ----------------------------------------------------------------------


def test_a_terminal_gets_one_compact_table_per_market(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    out, _ = terminals(monkeypatch)
    assert main(["short-interest", "--demo", "US.AAPL", "HK.00700", "US.TSLA"]) == 0
    text = ANSI.sub("", out.getvalue())
    us_part, _, hk_part = text.partition("HK short interest")
    assert "US short interest" in us_part
    assert "shares" in us_part
    assert "aggregated" not in us_part
    assert "aggregated" in hk_part
    assert "shares" not in hk_part
    assert "<NA>" not in text
    assert "NaN" not in text
    for code in ("US.AAPL", "HK.00700", "US.TSLA"):
        rows = REFERENCE.history(code)
        summary = (
            f"{code}: {len(rows)} rows, {rows[-1].timestamp_str} to {rows[0].timestamp_str}, "
            "newest 5 shown"
        )
        assert summary in text
        shown = [str(r.timestamp_str) for r in rows[:5]]
        assert all(day in text for day in shown)
        assert str(rows[5].timestamp_str) not in text.replace(summary, "")
    assert "--all shows every row" in " ".join(text.split())
    assert len(text.splitlines()) < 60  # not a 560-line wall


def test_without_rich_a_terminal_says_how_to_get_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_rich(monkeypatch)
    out, err = terminals(monkeypatch)
    assert main(["short-interest", "--demo", "US.AAPL", "HK.00700", "US.TSLA"]) == 0
    # One line for the table and the progress both; then the whole table, as a pipe gets it.
    assert err.getvalue() == RICH_HINT + "\n"
    lines = out.getvalue().splitlines()
    assert lines[0].split()[0] == "code"
    assert len(lines) == 1 + len(expected(["US.AAPL", "HK.00700", "US.TSLA"]))


@pytest.mark.usefixtures("renderer")
def test_all_shows_every_row_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = terminals(monkeypatch)
    assert main(["short-interest", "--demo", "US.AAPL", "--all"]) == 0
    text = out.getvalue()
    assert all(str(r.timestamp_str) in text for r in REFERENCE.history("US.AAPL"))
    assert "--all shows" not in text


# -- the progress display -------------------------------------------------------------------


def test_without_rich_the_progress_is_one_line_saying_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_rich(monkeypatch)
    _, err = terminals(monkeypatch)
    path = tmp_path / "short.csv"
    assert main(["short-interest", "--demo", "US.AAPL", "HK.00700", "-o", str(path)]) == 0
    assert err.getvalue().splitlines() == [RICH_HINT, f"wrote 559 rows to {path}"]
    assert len(read_csv(path.read_text(encoding="utf-8"))) == 559


def test_the_progress_counts_requests_sent_and_codes_done(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("rich")
    _, err = terminals(monkeypatch)
    path = tmp_path / "short.csv"
    assert main(["short-interest", "--demo", "US.AAPL", "HK.00700", "-o", str(path)]) == 0
    drawn = ANSI.sub("", err.getvalue())
    # 4 pages of US.AAPL, 8 of HK.00700: every request counted once it was sent.
    sent = [int(n) for n in re.findall(r"(\d+) requests sent", drawn)]
    assert sent == sorted(sent)
    assert sent[-1] == 12
    assert "2/2 codes" in drawn
    assert "559 rows" in drawn


def test_the_progress_says_when_it_waits_for_the_quota_and_gives_an_eta(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("rich")
    monkeypatch.setattr("aiomoomoo.cli._progress.TICK", 0.05)
    _, err = terminals(monkeypatch)
    path = tmp_path / "short.csv"
    # 12 requests at 3 per 0.4 s: three full windows to wait out.
    args = ["short-interest", "--demo", "US.AAPL", "HK.00700", "--rate-limit", "3/0.4"]
    assert main([*args, "-o", str(path)]) == 0
    drawn = ANSI.sub("", err.getvalue())
    waits = re.findall(r"waiting for quota (\d\.\d) s", drawn)
    assert waits, drawn
    assert all(0 <= float(wait) <= 0.4 for wait in waits), waits
    assert max(map(float, waits)) >= 0.1, waits
    assert re.search(r"ETA \d+\.\d s", drawn)
    assert len(read_csv(path.read_text(encoding="utf-8"))) == 559
    # Held requests are not counted as sent: at 3 per window, a count never runs ahead of
    # the windows that have opened.
    sent = [int(n) for n in re.findall(r"(\d+) requests sent", drawn)]
    assert max(sent) == 12


def test_ctrl_c_says_nothing_was_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("rich")
    _, err = terminals(monkeypatch)
    fetched = ProgressDisplay.fetched

    def interrupted(self: ProgressDisplay, progress: object) -> None:
        fetched(self, progress)  # type: ignore[arg-type]
        # As Ctrl-C does: asyncio.run cancels the command, which cleans up, then raises
        # KeyboardInterrupt.
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ProgressDisplay, "fetched", interrupted)
    path = tmp_path / "short.csv"
    assert main(["short-interest", "--demo", "US.AAPL", "-o", str(path)]) == 130
    assert ANSI.sub("", err.getvalue()).splitlines()[-1] == (
        "aiomoomoo short-interest: interrupted: nothing written"
    )
    assert not path.exists()


# -- output files ---------------------------------------------------------------------------


def test_the_format_comes_from_the_output_files_extension(
    opend: OpenDSimulator, tmp_path: Path
) -> None:
    codes = ["US.AAPL", "HK.00005"]
    as_json, as_csv, as_text = run_in(
        tmp_path,
        ["short-interest", *at(opend), *codes, "-o", "aapl.json"],
        ["short-interest", *at(opend), *codes, "-o", "aapl.csv"],
        ["short-interest", *at(opend), *codes, "-o", "aapl.txt"],
    )
    assert as_json == as_csv == as_text == 0
    assert_same_data(
        pd.DataFrame(json.loads((tmp_path / "aapl.json").read_text())), expected(codes)
    )
    assert_same_data(read_csv((tmp_path / "aapl.csv").read_text()), expected(codes))
    assert (tmp_path / "aapl.txt").read_text().split("\n")[0].split()[0] == "code"


def run_in(cwd: Path, *commands: list[str]) -> list[int]:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return [main(command) for command in commands]
    finally:
        os.chdir(previous)


@pytest.mark.parametrize("where", ["missing dir", "a directory"])
def test_a_bad_output_path_is_reported_before_any_fetch(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "no-such-dir" / "short.csv" if where == "missing dir" else tmp_path
    # Nothing listens on the port: had it tried to fetch first, it would say it cannot connect.
    args = ["short-interest", "--port", str(closed_port()), "US.AAPL", "--format", "csv"]
    assert main([*args, "-o", str(output)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"aiomoomoo short-interest: cannot write {output}: ")
    assert len(err.splitlines()) == 1
    assert "connect" not in err


# -- a hostile gateway ----------------------------------------------------------------------


class HostileGateway:
    """A gateway that plants terminal control sequences in everything it sends.

    InitConnect is refused with ``HOSTILE`` in its message when ``refuse_init``; otherwise the
    symbol ``EVIL`` is refused the same way, ``BADDATE`` gets one row whose date carries
    ``HOSTILE`` (which the client refuses, naming the text in its error) and every other symbol
    one sound row.
    """

    def __init__(self, *, refuse_init: bool = False) -> None:
        self.refuse_init = refuse_init
        self.host = "127.0.0.1"
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> HostileGateway:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    body = self._answer(frame.proto_id, frame.body)
                    if body is not None:
                        writer.write(encode_frame(frame.proto_id, frame.serial, body))
        writer.close()

    def _answer(self, proto_id: int, body: bytes) -> bytes | None:
        if proto_id == ProtoId.INIT_CONNECT:
            if self.refuse_init:
                return InitConnect_pb2.Response(retType=-1, retMsg=HOSTILE).SerializeToString()
            init = InitConnect_pb2.Response(retType=0)
            init.s2c.serverVer, init.s2c.loginUserID, init.s2c.connID = 1, 1, 42
            init.s2c.connAESKey, init.s2c.keepAliveInterval = "0123456789ABCDEF", 10
            return init.SerializeToString()
        if proto_id != ProtoId.GET_SHORT_INTEREST:
            return None
        request = Qot_GetShortInterest_pb2.Request.FromString(body)
        reply = Qot_GetShortInterest_pb2.Response(retType=0)
        if request.c2s.security.code == "EVIL":
            reply = Qot_GetShortInterest_pb2.Response(retType=-1, retMsg=HOSTILE, errCode=1)
        else:
            item = reply.s2c.usItemList.add()
            item.timestamp, item.timestampStr = 1_767_330_000, "2026-01-02"
            if request.c2s.security.code == "BADDATE":
                item.timestampStr += HOSTILE
            item.sharesShort, item.closePrice = 1_000_000, 12.5
            reply.s2c.nextKey = "-1"
        return reply.SerializeToString()


@pytest.fixture
def hostile() -> Iterator[HostileGateway]:
    with HostileGateway() as gateway:
        yield gateway


def assert_escaped(text: str) -> None:
    # rich's own styling sequences may stay; none of the gateway's may get through.
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the terminal"
    assert "\\x1b]0;owned\\x07" in text


@pytest.mark.usefixtures("renderer")
def test_a_hostile_gateways_text_is_escaped_on_a_terminal(
    hostile: HostileGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = terminals(monkeypatch)
    args = ["--host", hostile.host, "--port", str(hostile.port)]
    assert main(["short-interest", *args, "US.EVIL", "US.BADDATE", "US.GOOD"]) == 1
    assert_escaped(err.getvalue())
    assert not [raw for raw in RAW if raw in out.getvalue()]
    assert "2026-01-02" in out.getvalue()
    assert "all symbols fetched OK" in err.getvalue()  # visible, but on the error's own line
    errors = re.findall(r"aiomoomoo short-interest: US\.EVIL: [^\n]*", err.getvalue())
    assert errors[0].endswith("(retType=-1, errCode=1)")
    assert "\\r\\n all symbols fetched OK" in errors[0]
    refused = re.findall(r"aiomoomoo short-interest: US\.BADDATE: [^\n]*", err.getvalue())
    assert "which is not a YYYY-MM-DD date" in refused[0]
    assert "owned" in refused[0]


def test_a_hostile_gateways_date_never_reaches_csv_on_a_terminal(
    hostile: HostileGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A row's date is its one text: one carrying control sequences is refused as no date.
    out, err = terminals(monkeypatch)
    args = ["--host", hostile.host, "--port", str(hostile.port), "--format", "csv"]
    assert main(["short-interest", *args, "US.BADDATE"]) == 1
    assert "owned" not in out.getvalue()
    assert_escaped(err.getvalue())


def test_a_hostile_gateways_data_reaches_a_file_exactly(
    hostile: HostileGateway, tmp_path: Path
) -> None:
    path = tmp_path / "short.json"
    args = ["--host", hostile.host, "--port", str(hostile.port), "-o", str(path)]
    assert main(["short-interest", *args, "US.GOOD", "US.BADDATE"]) == 1
    [row] = json.loads(path.read_text())
    assert (row["timestamp"], row["timestamp_str"]) == (1_767_330_000, "2026-01-02")


def test_a_hostile_init_connect_message_is_escaped_from_a_real_process() -> None:
    with HostileGateway(refuse_init=True) as gateway:
        result = run("short-interest", "--host", gateway.host, "--port", str(gateway.port), "US.A")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert_escaped(result.stderr)
