"""Interop proof: the unmodified official JavaScript SDK (futu-api) works against the simulator.

``tests/js`` pins futu-api in a lockfile; the first run installs it with ``npm ci`` (later runs
reuse ``tests/js/node_modules``). ``tests/js/page_short_interest.mjs`` logs in over the
simulator's WebSocket transport, pages each code to ``nextKey == "-1"`` through the SDK and prints
every row as a JSON line, which must equal the simulator's history field for field. Without
``node`` and ``npm`` on PATH the tests skip; any other failure, ``npm ci`` included, fails them.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor

from aiomoomoo._proto import InitWebSocket_pb2
from aiomoomoo.testing import Faults, HkRow, Quota, SimulatorThread, UsRow
from aiomoomoo.testing._texts import Lang, rate_limited

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "page_short_interest.mjs"
#: A cold ``npm ci`` downloads 18 small packages.
NPM_TIMEOUT = 300.0
#: Paging both codes takes about half a second; this only keeps a hung SDK from hanging pytest.
SCRIPT_TIMEOUT = 60.0
KEY = "simulator key"

#: SDK field name to row attribute; the int64 fields arrive as decimal strings.
US_FIELDS = {
    "timestamp": "timestamp",
    "timestampStr": "timestamp_str",
    "sharesShort": "shares_short",
    "shortPercent": "short_percent",
    "avgDailyShareVolume": "avg_daily_share_volume",
    "daysToCover": "days_to_cover",
    "closePrice": "close_price",
    "lastClosePrice": "last_close_price",
}
HK_FIELDS = {
    "timestamp": "timestamp",
    "timestampStr": "timestamp_str",
    "closePrice": "close_price",
    "lastClosePrice": "last_close_price",
    "aggregatedShort": "aggregated_short",
    "aggregatedShortRatio": "aggregated_short_ratio",
}
INT64_FIELDS = {"timestamp", "sharesShort", "avgDailyShareVolume", "aggregatedShort"}


def _installed_version() -> str | None:
    manifest = JS_DIR / "node_modules" / "futu-api" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def _pinned_version() -> str:
    lock = json.loads((JS_DIR / "package-lock.json").read_text(encoding="utf-8"))
    return str(lock["packages"]["node_modules/futu-api"]["version"])


@pytest.fixture(scope="module")
def node() -> list[str]:
    """The command that runs the script: ``node`` plus the flag Node 20 needs for WebSocket."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        pytest.skip(
            f"the JavaScript SDK conformance test needs Node.js 20+ and npm: {missing} not on PATH"
        )
    if _installed_version() != _pinned_version():
        # --ignore-scripts: the only install script, protobufjs's, sets up its CLI, unused here.
        installed = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        assert installed.returncode == 0, f"npm ci in {JS_DIR} failed:\n{installed.stderr}"
        assert _installed_version() == _pinned_version()
    for flags in ([], ["--experimental-websocket"]):
        probe = subprocess.run(
            [node, *flags, "-p", "typeof WebSocket"],
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
        if probe.stdout.strip() == "function":
            return [node, *flags]
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    pytest.fail(f"Node.js {version.stdout.strip()} has no WebSocket client: futu-api needs 20.10+")


def run_script(
    node: list[str], port: int, key: str, *codes: str, parallel: bool = False
) -> tuple[int, list[Any]]:
    """Run the SDK script on the simulator; its exit status and its JSON lines."""
    flags = ["--parallel"] if parallel else []
    result = subprocess.run(
        [*node, str(SCRIPT), *flags, "127.0.0.1", str(port), key, "50", *codes],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    try:
        lines = [json.loads(line) for line in result.stdout.splitlines()]
    except json.JSONDecodeError:
        pytest.fail(f"the script printed something not JSON:\n{result.stdout}\n{result.stderr}")
    return result.returncode, lines


def expected_row(row: UsRow | HkRow) -> dict[str, object]:
    fields = US_FIELDS if isinstance(row, UsRow) else HK_FIELDS
    expected: dict[str, object] = {}
    for name, attribute in fields.items():
        value = getattr(row, attribute)
        if value is not None:
            expected[name] = str(value) if name in INT64_FIELDS else value
    return expected


def assert_pages_match(sim: Any, lines: list[Any], codes: tuple[str, ...]) -> int:
    """Every code's rows equal its history, in order; the number of pages fetched."""
    assert lines[0]["login"] is True
    assert int(lines[0]["connID"]) > 0
    total_pages = 0
    for code in codes:
        rows = sim.history(code)
        got = [line for line in lines if line.get("code") == code and "row" in line]
        [summary] = [line for line in lines if line.get("code") == code and "pages" in line]
        assert summary["rows"] == len(rows) == len(got)
        assert summary["pages"] == math.ceil(len(rows) / 50)
        for index, (line, row) in enumerate(zip(got, rows, strict=True)):
            assert line["row"] == expected_row(row), f"{code} row {index}"
            assert line["page"] == index // 50 + 1
        total_pages += summary["pages"]
    return total_pages


@pytest.mark.parametrize(
    ("faults", "pushes"),
    [(None, False), (Faults(push_every=1), True)],
    ids=["plain", "with-a-push-before-every-reply"],
)
def test_official_js_client_pages_through_full_histories(
    node: list[str], faults: Faults | None, pushes: bool
) -> None:
    codes = ("US.AAPL", "HK.00700")
    with SimulatorThread(quota=Quota(), faults=faults, websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port is not None
        assert [len(sim.history(code)) for code in codes] == [176, 383]
        status, lines = run_script(node, sim.websocket_port, KEY, *codes)
        assert status == 0, lines
        pages = assert_pages_match(sim, lines, codes)
        assert pages == 4 + 8
        assert sim.stats.requests == pages
        assert sim.stats.failed == sim.stats.rate_limited == 0
        assert sim.stats.pushes == (pages if pushes else 0)


def test_official_js_client_matches_interleaved_replies_by_section(node: list[str]) -> None:
    # Four codes paged at once, every reply held a random 0-50 ms: replies overtake each other.
    codes = ("US.AAPL", "HK.00700", "US.TSLA", "HK.09988")
    faults = Faults(reply_jitter=0.05)
    with SimulatorThread(quota=None, faults=faults, websocket_port=0) as sim:
        assert sim.websocket_port is not None
        status, lines = run_script(node, sim.websocket_port, "", *codes, parallel=True)
        assert status == 0, lines
        pages = assert_pages_match(sim, lines, codes)
        assert sim.stats.requests == pages
        # The codes' rows really were interleaved in the order they arrived.
        arrival = [line["code"] for line in lines if "row" in line]
        assert arrival != sorted(arrival, key=codes.index)


def test_official_js_client_reports_a_wrong_key(node: list[str]) -> None:
    with SimulatorThread(quota=Quota(), websocket_port=0, websocket_key=KEY) as sim:
        assert sim.websocket_port is not None
        status, lines = run_script(node, sim.websocket_port, "not the key", "US.AAPL")
        assert status == 2, lines
        [line] = lines
        assert line["login"] is False
        assert line["error"] != 0
        assert sim.stats.requests == 0


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_official_js_client_gets_the_simulators_refusals(node: list[str], lang: Lang) -> None:
    quota = Quota(1, 30)
    with SimulatorThread(quota=quota, websocket_port=0, lang=lang) as sim:
        assert sim.websocket_port is not None
        status, lines = run_script(node, sim.websocket_port, "", "US.AAPL")
        # One page fits the quota; the second is refused in OpenD's words, Chinese intact.
        assert status == 3, lines
        failure = lines[-1]["failed"]
        assert failure["retType"] == -1
        assert failure["retMsg"] == rate_limited(lang, quota)
        assert sim.stats.rate_limited == 1
        assert sim.stats.requests == 2


def test_our_init_websocket_schema_matches_the_sdks(node: list[str], tmp_path: Path) -> None:
    """proto/ InitWebSocket.proto against the one futu-api ships, field by field."""
    protoc: Any = pytest.importorskip(
        "grpc_tools.protoc",
        reason="the pinned generator (proto extra) needs protobuf 7; `nox -s tests` installs it",
    )
    sdk_protos = JS_DIR / "node_modules" / "futu-api" / "proto"
    descriptor_set = tmp_path / "sdk.pb"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{sdk_protos}",
            f"--descriptor_set_out={descriptor_set}",
            str(sdk_protos / "InitWebSocket.proto"),
        ]
    )
    assert status == 0, "protoc could not compile futu-api's InitWebSocket.proto"
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    theirs = pool.FindFileByName("InitWebSocket.proto").message_types_by_name
    ours = InitWebSocket_pb2.DESCRIPTOR.message_types_by_name
    assert sorted(ours) == sorted(theirs)
    for name, message in ours.items():
        assert shapes(message) == shapes(theirs[name]), name


def shapes(message: Descriptor) -> list[tuple[object, ...]]:
    """What decides each field's bytes on the wire, minus package names, which differ by design."""
    result: list[tuple[object, ...]] = []
    for field in sorted(message.fields, key=lambda field: field.number):
        referenced = field.message_type or field.enum_type
        default = field.default_value if field.has_default_value else None
        result.append(
            (
                field.name,
                field.number,
                field.type,
                field.is_required,
                field.is_repeated,
                default,
                referenced.name if referenced is not None else None,
            )
        )
    return result
