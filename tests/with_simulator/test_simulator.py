"""The OpenD simulator's behaviour, checked frame by frame over loopback TCP."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import socket
import time
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from aiomoomoo._proto import (
    GetGlobalState_pb2,
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo._security import Market
from aiomoomoo._wire import Frame, FrameDecoder, ProtoFmt, ProtoId, encode_frame
from aiomoomoo.testing import (
    HkRow,
    Lang,
    OpenDSimulator,
    Quota,
    SimulatorThread,
    SymbolProfile,
    UsRow,
    generate_history,
)

from .._fakes import FakeClock
from .conftest import PeerClosed, RawClient, connected, decode, short_interest_request

pytestmark = pytest.mark.anyio

UNIVERSE = [
    "US.AAPL",
    "US.TSLA",
    "US.NVDA",
    "US.SPY",
    "US.BRK.B",
    "HK.00700",
    "HK.09988",
    "HK.00005",
    "HK.02800",
]
US_FIELDS = [
    "timestamp",
    "timestampStr",
    "sharesShort",
    "shortPercent",
    "avgDailyShareVolume",
    "daysToCover",
    "closePrice",
    "lastClosePrice",
]
HK_FIELDS = [
    "timestamp",
    "timestampStr",
    "closePrice",
    "lastClosePrice",
    "aggregatedShort",
    "aggregatedShortRatio",
]

Item = Qot_GetShortInterest_pb2.UsShortInterestItem | Qot_GetShortInterest_pb2.HkShortInterestItem


def items(page: Qot_GetShortInterest_pb2.Response) -> list[Item]:
    return [*page.s2c.usItemList, *page.s2c.hkItemList]


def as_row(item: Item) -> UsRow | HkRow:
    """The simulator row an item on the wire stands for; absent fields become None."""
    if isinstance(item, Qot_GetShortInterest_pb2.UsShortInterestItem):
        us = [getattr(item, f) if item.HasField(f) else None for f in US_FIELDS]  # type: ignore[arg-type]
        return UsRow(*us)
    hk = [getattr(item, f) if item.HasField(f) else None for f in HK_FIELDS]  # type: ignore[arg-type]
    return HkRow(*hk)


def day(row: UsRow | HkRow) -> dt.date:
    assert row.timestamp_str is not None
    return dt.date.fromisoformat(row.timestamp_str)


# -- connection set-up and housekeeping protocols ---------------------------------------------


async def test_init_connect_gives_each_connection_its_own_conn_id(
    simulator: OpenDSimulator,
) -> None:
    conn_ids = []
    for _ in range(4):
        async with RawClient.connect(simulator.host, simulator.port) as raw:
            response = await raw.init_connect()
            assert response.retType == 0
            s2c = response.s2c
            assert s2c.keepAliveInterval == 10
            assert len(s2c.connAESKey) == 16
            assert s2c.serverVer > 0
            assert not s2c.HasField("aesCBCiv")
            conn_ids.append(s2c.connID)
    assert all(conn_ids)
    assert len(set(conn_ids)) == len(conn_ids)
    assert simulator.stats.connections == 4


async def test_init_connect_announces_the_configured_keepalive_interval() -> None:
    async with OpenDSimulator(keepalive_interval=3) as sim, connected(sim) as raw:
        response = await raw.init_connect()
        assert response.s2c.keepAliveInterval == 3


async def test_init_connect_refuses_encryption(raw_client: RawClient) -> None:
    init = InitConnect_pb2.Request()
    init.c2s.clientVer = 300
    init.c2s.clientID = "x"
    init.c2s.packetEncAlgo = 2
    response = await raw_client.request(ProtoId.INIT_CONNECT, init, InitConnect_pb2.Response)
    assert response.retType == -1
    assert "encryption" in response.retMsg


async def test_keep_alive_is_answered(raw_client: RawClient, simulator: OpenDSimulator) -> None:
    response = await raw_client.keep_alive()
    assert response.retType == 0
    assert abs(response.s2c.time - time.time()) < 60
    assert simulator.stats.keepalives == 1


async def test_global_state_is_answered(raw_client: RawClient) -> None:
    response = await raw_client.global_state()
    assert response.retType == 0
    assert response.s2c.qotLogined
    assert response.s2c.connID == raw_client.conn_id
    assert abs(response.s2c.time - time.time()) < 60


async def test_unknown_proto_id_is_refused_with_a_clear_message(raw_client: RawClient) -> None:
    response = await raw_client.request(
        3004, KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=1)), KeepAlive_pb2.Response
    )
    assert response.retType == -1
    assert "3004" in response.retMsg
    assert "not supported" in response.retMsg
    # The connection stays usable.
    assert (await raw_client.keep_alive()).retType == 0


@pytest.mark.parametrize(
    ("proto_id", "request_", "response_type"),
    [
        (
            ProtoId.KEEP_ALIVE,
            KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=1)),
            KeepAlive_pb2.Response,
        ),
        (
            ProtoId.GET_GLOBAL_STATE,
            GetGlobalState_pb2.Request(c2s=GetGlobalState_pb2.C2S(userID=0)),
            GetGlobalState_pb2.Response,
        ),
        (
            ProtoId.GET_SHORT_INTEREST,
            short_interest_request(Market.US, "AAPL"),
            Qot_GetShortInterest_pb2.Response,
        ),
    ],
    ids=["keepalive", "global-state", "short-interest"],
)
async def test_requests_before_init_connect_are_refused(
    simulator: OpenDSimulator,
    proto_id: int,
    request_: KeepAlive_pb2.Request,
    response_type: type[KeepAlive_pb2.Response],
) -> None:
    async with RawClient.connect(simulator.host, simulator.port) as raw:
        response = await raw.request(proto_id, request_, response_type)
        assert response.retType == -1
        assert "InitConnect" in response.retMsg
        assert (await raw.init_connect()).retType == 0
        assert (await raw.request(proto_id, request_, response_type)).retType == 0
    assert simulator.stats.requests <= 1  # the refused short-interest request is not served


async def test_repr_shows_state() -> None:
    sim = OpenDSimulator(quota=Quota(5, 0.5))
    assert repr(sim).startswith("<OpenDSimulator stopped")
    async with sim:
        assert f"serving 127.0.0.1:{sim.port}" in repr(sim)
        assert "max_requests=5" in repr(sim)
    assert "stopped" in repr(sim)


# -- paging ---------------------------------------------------------------------------------


async def test_default_page_size_is_ten(raw_client: RawClient) -> None:
    page = await raw_client.short_interest("US.AAPL")
    assert page.retType == 0
    assert len(page.s2c.usItemList) == 10
    assert not page.s2c.hkItemList
    assert page.s2c.nextKey not in ("", "-1")


@pytest.mark.parametrize("num", [1, 2, 49, 50])
async def test_page_sizes_from_1_to_50_are_accepted(raw_client: RawClient, num: int) -> None:
    page = await raw_client.short_interest("HK.00700", num=num)
    assert page.retType == 0
    assert len(page.s2c.hkItemList) == num


@pytest.mark.parametrize("num", [0, 51, -1, 1000])
async def test_page_sizes_outside_1_to_50_are_refused(raw_client: RawClient, num: int) -> None:
    page = await raw_client.short_interest("US.AAPL", num=num)
    assert page.retType == -1
    assert page.retMsg == f"num must be between 1 and 50, got {num}"
    assert not page.HasField("s2c")


@pytest.mark.parametrize("num", [7, 10, 50])
@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700", "US.BRK.B"])
async def test_walking_next_key_returns_every_row_once_newest_first(
    raw_client: RawClient, simulator: OpenDSimulator, code: str, num: int
) -> None:
    pages = await raw_client.walk(code, num=None if num == 10 else num)
    rows = [as_row(item) for page in pages for item in items(page)]
    assert rows == simulator.history(code)
    timestamps = [row.timestamp for row in rows]
    assert all(a is not None and b is not None and a > b for a, b in itertools.pairwise(timestamps))
    assert len(pages) == -(-len(rows) // num)
    for page in pages[:-1]:
        assert len(items(page)) == num
        assert page.s2c.nextKey not in ("", "-1")
    assert pages[-1].s2c.nextKey == "-1"


async def test_next_key_is_the_last_timestamp_as_in_the_seed_document(
    raw_client: RawClient,
) -> None:
    page = await raw_client.short_interest("HK.00700")
    assert page.s2c.nextKey == str(page.s2c.hkItemList[-1].timestamp)


async def test_next_key_minus_one_gives_an_empty_last_page(raw_client: RawClient) -> None:
    page = await raw_client.short_interest("US.AAPL", next_key="-1")
    assert page.retType == 0
    assert not items(page)
    assert page.s2c.nextKey == "-1"


@pytest.mark.parametrize(("lang", "text"), [("en", "unknown stock"), ("zh", "未知股票")])
async def test_unknown_symbol_gets_opends_words(lang: Lang, text: str) -> None:
    async with OpenDSimulator(quota=None, lang=lang) as sim, connected(sim) as raw:
        page = await raw.short_interest("US.NOSUCH")
        assert (page.retType, page.retMsg, page.errCode) == (-1, text, 2)


@pytest.mark.parametrize("market", [0, 21, 31])
async def test_markets_other_than_hk_and_us_are_refused(raw_client: RawClient, market: int) -> None:
    request = short_interest_request(market, "600519")
    page = await raw_client.request(
        ProtoId.GET_SHORT_INTEREST, request, Qot_GetShortInterest_pb2.Response
    )
    assert page.retType == -1
    assert "HK and US" in page.retMsg
    assert str(market) in page.retMsg


@pytest.mark.parametrize("next_key", ["garbage", "@x", "12.5"])
async def test_invalid_next_key_is_refused(raw_client: RawClient, next_key: str) -> None:
    page = await raw_client.short_interest("US.AAPL", next_key=next_key)
    assert page.retType == -1
    assert repr(next_key) in page.retMsg


# -- the data -------------------------------------------------------------------------------


def test_universe_holds_several_years_of_every_builtin_symbol() -> None:
    sim = OpenDSimulator()
    assert set(UNIVERSE) <= set(sim.codes)
    for code in UNIVERSE:
        rows = sim.history(code)
        assert day(rows[0]) - day(rows[-1]) > dt.timedelta(days=5 * 365), code
        assert day(rows[0]) == dt.date(2026, 4, 30), code


@pytest.mark.parametrize("code", [c for c in UNIVERSE if c.startswith("US.")])
def test_us_rows_are_twice_monthly(code: str) -> None:
    rows = OpenDSimulator().history(code)
    days = [day(r) for r in rows]
    per_month = Counter((d.year, d.month) for d in days)
    assert set(per_month.values()) == {2}
    months = sorted(per_month)
    first, last = months[0], months[-1]
    assert len(months) == (last[0] - first[0]) * 12 + last[1] - first[1] + 1  # no month missing
    for d in days:
        assert d.weekday() < 5
        assert 11 <= d.day <= 15 or d.day >= 26  # mid-month, or the month's last business day


@pytest.mark.parametrize("code", [c for c in UNIVERSE if c.startswith("HK.")])
def test_hk_rows_are_weekly(code: str) -> None:
    days = [day(r) for r in OpenDSimulator().history(code)]
    mondays = [d - dt.timedelta(days=d.weekday()) for d in days]
    assert all(a - b == dt.timedelta(days=7) for a, b in itertools.pairwise(mondays))
    assert all(d.weekday() <= 4 for d in days)
    assert sum(d.weekday() == 4 for d in days) > 0.9 * len(days)  # mostly Fridays


@pytest.mark.parametrize("code", UNIVERSE)
def test_timestamps_are_local_midnight_and_match_timestamp_str(code: str) -> None:
    zone = ZoneInfo("America/New_York" if code.startswith("US.") else "Asia/Hong_Kong")
    for row in OpenDSimulator().history(code):
        assert row.timestamp is not None
        local = dt.datetime.fromtimestamp(row.timestamp, zone)
        assert local.time() == dt.time(0, 0)
        assert local.date().isoformat() == row.timestamp_str


def test_hk_00700_newest_row_matches_the_seed_document() -> None:
    newest = OpenDSimulator().history("HK.00700")[0]
    assert isinstance(newest, HkRow)
    assert (newest.timestamp, newest.timestamp_str) == (1777478400, "2026-04-30")
    assert newest.close_price == 467.8
    # The seed document's Good Friday week: reported on Thursday 2026-04-02.
    days = {r.timestamp_str for r in OpenDSimulator().history("HK.00700")}
    assert "2026-04-02" in days
    assert "2026-04-03" not in days


@pytest.mark.parametrize("code", UNIVERSE)
def test_values_are_plausible(code: str) -> None:
    for row in OpenDSimulator().history(code):
        assert row.close_price is not None
        assert row.last_close_price is not None
        assert row.close_price > 0
        assert 0.5 < row.last_close_price / row.close_price < 2
        if isinstance(row, UsRow):
            assert row.shares_short is not None
            assert row.avg_daily_share_volume is not None
            assert row.short_percent is not None
            assert row.shares_short > 0
            assert row.avg_daily_share_volume > 0
            assert 0 < row.short_percent < 100
            # FINRA reports days to cover as short interest over average volume, at least 1.
            expected = max(row.shares_short / row.avg_daily_share_volume, 1.0)
            assert row.days_to_cover == pytest.approx(expected, abs=0.006)
        else:
            assert row.aggregated_short is not None
            assert row.aggregated_short_ratio is not None
            assert row.aggregated_short > 0
            assert 0 < row.aggregated_short_ratio < 100


def test_same_seed_same_history_different_seed_different_history() -> None:
    for code in ("US.AAPL", "HK.00700"):
        assert OpenDSimulator(seed=3).history(code) == OpenDSimulator(seed=3).history(code)
        assert OpenDSimulator(seed=3).history(code) != OpenDSimulator(seed=4).history(code)
    profile = SymbolProfile(price=10.0, shares=1e9, short_percent=5.0, daily_volume=1e6)
    assert generate_history("US.X", profile, seed=1) == generate_history("US.X", profile, seed=1)
    assert generate_history("US.X", profile, seed=1) != generate_history("US.Y", profile, seed=1)


async def test_same_seed_serves_the_same_bytes() -> None:
    pages = []
    for _ in range(2):
        async with OpenDSimulator(seed=9) as sim, connected(sim) as raw:
            page = await raw.short_interest("US.TSLA", num=50)
            pages.append(page.SerializeToString())
    assert pages[0] == pages[1]


# -- adding symbols -------------------------------------------------------------------------


async def test_add_symbol_with_a_profile(simulator: OpenDSimulator, raw_client: RawClient) -> None:
    simulator.add_symbol(
        "US.GME", SymbolProfile(price=25.5, shares=4.4e8, short_percent=15.0, daily_volume=8e6)
    )
    simulator.add_symbol(
        "HK.01810", SymbolProfile(price=40.0, shares=2.5e10, short_percent=1.0, daily_volume=9e7)
    )
    assert {"US.GME", "HK.01810"} <= set(simulator.codes)
    for code, price in (("US.GME", 25.5), ("HK.01810", 40.0)):
        pages = await raw_client.walk(code, num=50)
        rows = [as_row(item) for page in pages for item in items(page)]
        assert rows == simulator.history(code)
        assert rows[0].close_price == price


async def test_add_symbol_with_rows_leaves_none_fields_off_the_wire(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    us_rows = [
        UsRow(1777521600, "2026-04-30", 100, 1.5, 50, 2.0, 10.0, None),
        UsRow(1776225600, "2026-04-15", None, None, None, None, None, None),
    ]
    hk_rows = [HkRow(1777478400, "2026-04-30", None, 2.0, 7, None)]
    simulator.add_symbol("US.ROWS", rows=us_rows)
    simulator.add_symbol("HK.99999", rows=hk_rows)

    us_page = await raw_client.short_interest("US.ROWS")
    assert us_page.retType == 0
    first, second = us_page.s2c.usItemList
    assert first.sharesShort == 100
    assert first.HasField("closePrice")
    assert not first.HasField("lastClosePrice")
    for name in US_FIELDS[2:]:
        assert not second.HasField(name)  # type: ignore[arg-type]
    assert second.timestampStr == "2026-04-15"

    hk_page = await raw_client.short_interest("HK.99999")
    (item,) = hk_page.s2c.hkItemList
    assert not item.HasField("closePrice")
    assert not item.HasField("aggregatedShortRatio")
    assert item.aggregatedShort == 7
    assert [as_row(i) for i in items(us_page) + items(hk_page)] == [*us_rows, *hk_rows]


@pytest.mark.parametrize("num", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "timestamps",
    [[300, None, None, 200, None, None, 100, 100, None, 50], [100, 200, 300, 300]],
    ids=["missing-and-repeated", "oldest-first"],
)
async def test_hand_made_rows_page_completely_despite_odd_timestamps(
    simulator: OpenDSimulator, raw_client: RawClient, timestamps: list[int | None], num: int
) -> None:
    # Paging must return every row exactly once, however the hand-made timestamps look.
    rows = [HkRow(ts, None, float(i), None, None, None) for i, ts in enumerate(timestamps)]
    simulator.add_symbol("HK.88888", rows=rows)
    pages = await raw_client.walk("HK.88888", num=num)
    assert [as_row(item) for page in pages for item in items(page)] == rows


def test_add_symbol_rejects_bad_arguments() -> None:
    sim = OpenDSimulator()
    profile = SymbolProfile(price=1.0, shares=1e6, short_percent=1.0, daily_volume=1e4)
    with pytest.raises(ValueError, match="exactly one"):
        sim.add_symbol("US.X", profile, rows=[])
    with pytest.raises(ValueError, match="exactly one"):
        sim.add_symbol("US.X")
    with pytest.raises(TypeError, match="UsRow"):
        sim.add_symbol("US.X", rows=[HkRow(1, "x", 1.0, 1.0, 1, 1.0)])
    with pytest.raises(ValueError, match="SH"):
        sim.add_symbol("SH.600519", profile)
    with pytest.raises(KeyError):
        sim.history("US.NOSUCH")


# -- quota ----------------------------------------------------------------------------------


async def test_quota_refuses_the_sixth_request_in_the_window_and_slides() -> None:
    # Times are multiples of 1/16 so the window arithmetic is exact in binary floating point.
    clock = FakeClock(0.0)
    async with OpenDSimulator(quota=Quota(5, 0.5), clock=clock) as sim, connected(sim) as raw:

        async def at(now: float) -> Qot_GetShortInterest_pb2.Response:
            clock.now = now
            return await raw.short_interest("US.AAPL")

        for now in (0.0, 0.0625, 0.125, 0.1875, 0.25):
            assert (await at(now)).retType == 0
        refused = await at(0.375)
        assert refused.retType == -1
        assert refused.retMsg == (
            "Get Short Interest is too frequent, request failed, "
            "no more than 5 times every 0.5 seconds."
        )
        assert not refused.HasField("s2c")

        assert (await at(0.5)).retType == 0  # the request at 0.0 has left the window
        assert (await at(0.5)).retType == -1  # 0.0625 .. 0.5 fill it again
        assert (await at(0.5625)).retType == 0  # the request at 0.0625 has left

        assert sim.stats.rate_limited == 2
        assert sim.stats.accepted_at == [0.0, 0.0625, 0.125, 0.1875, 0.25, 0.5, 0.5625]
        # Other protocols do not count against the quota.
        for _ in range(10):
            assert (await raw.keep_alive()).retType == 0
            assert (await raw.global_state()).retType == 0


async def test_quota_is_shared_by_all_connections() -> None:
    clock = FakeClock(1000.0)
    async with (
        OpenDSimulator(quota=Quota(5, 0.5), clock=clock) as sim,
        connected(sim) as one,
        connected(sim) as two,
    ):
        for raw in (one, two, one, two, one):
            assert (await raw.short_interest("HK.00700")).retType == 0
        assert (await two.short_interest("HK.00700")).retType == -1
        assert (await one.short_interest("HK.00700")).retType == -1
        clock.advance(0.5)
        assert (await two.short_interest("HK.00700")).retType == 0


def test_quota_parse() -> None:
    assert Quota.parse("30/30") == Quota()
    assert Quota.parse("5/0.5") == Quota(5, 0.5)
    for text in ("abc", "5", "5/", "/5", "x/1", "5/y"):
        with pytest.raises(ValueError, match="N/SECONDS"):
            Quota.parse(text)
    for text in ("0/1", "5/0", "5/-1", "5/nan", "5/inf"):
        with pytest.raises(ValueError, match="max_requests >= 1"):
            Quota.parse(text)


# -- faults ---------------------------------------------------------------------------------


async def test_drop_after_closes_the_connection_on_the_next_request(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    simulator.faults.drop_after = 2
    assert (await raw_client.short_interest("US.AAPL")).retType == 0
    assert (await raw_client.keep_alive()).retType == 0  # only short interest counts
    assert (await raw_client.short_interest("US.AAPL")).retType == 0
    await raw_client.send(ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.US, "AAPL"))
    with pytest.raises(PeerClosed):
        await raw_client.receive()
    assert simulator.stats.dropped == 1
    assert simulator.stats.requests == 2

    # The count is per connection: a new one gets its two requests again.
    async with connected(simulator) as again:
        assert (await again.short_interest("US.AAPL")).retType == 0


async def test_reply_delay_holds_replies(simulator: OpenDSimulator, raw_client: RawClient) -> None:
    simulator.faults.reply_delay = 0.2
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await raw_client.short_interest("US.AAPL")).retType == 0
    assert 0.2 <= loop.time() - started < 2


async def test_split_writes_deliver_frames_in_small_pieces(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    whole = await raw_client.short_interest("US.AAPL", num=5)
    simulator.faults.split_writes = 16
    raw_client.read_sizes.clear()
    split = await raw_client.short_interest("US.AAPL", num=5)
    assert split == whole
    frame_size = 44 + whole.ByteSize()
    assert sum(raw_client.read_sizes) == frame_size
    assert len(raw_client.read_sizes) >= frame_size // 16 // 2
    assert max(raw_client.read_sizes) < frame_size


async def test_reorder_window_sends_concurrent_replies_in_reverse(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    simulator.faults.reorder_window = 0.05
    codes = ["US.AAPL", "US.TSLA", "HK.00700"]
    serials = []
    for code in codes:
        security = code.split(".", 1)
        request = short_interest_request(Market[security[0]], security[1], num=1)
        serials.append(await raw_client.send(ProtoId.GET_SHORT_INTEREST, request))
    frames = [await raw_client.receive() for _ in codes]
    assert [f.serial for f in frames] == serials[::-1]
    for frame, code in zip(frames, codes[::-1], strict=True):
        page = decode(frame, Qot_GetShortInterest_pb2.Response)
        assert as_row(items(page)[0]) == simulator.history(code)[0]


async def test_push_every_sends_notify_frames_reusing_the_request_serial(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    simulator.faults.push_every = 2
    serials, pushes = [], []
    for _ in range(4):
        serial = await raw_client.send(
            ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.US, "AAPL")
        )
        serials.append(serial)
        while (frame := await raw_client.receive()).proto_id == ProtoId.NOTIFY:
            pushes.append(frame)
        assert (frame.proto_id, frame.serial) == (ProtoId.GET_SHORT_INTEREST, serial)
    # Every second request brings a push that shares its serial.
    assert [push.serial for push in pushes] == [serials[1], serials[3]]
    assert simulator.stats.pushes == 2
    for push in pushes:
        notify = decode(push, Notify_pb2.Response)
        assert notify.retType == 0
        assert notify.s2c.type == Notify_pb2.NotifyType_GtwEvent
        assert notify.s2c.event.desc


async def test_push_every_push_precedes_its_reply(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    simulator.faults.push_every = 1
    serial = await raw_client.send(
        ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.HK, "00700")
    )
    push, reply = await raw_client.receive(), await raw_client.receive()
    assert (push.proto_id, push.serial) == (ProtoId.NOTIFY, serial)
    assert (reply.proto_id, reply.serial) == (ProtoId.GET_SHORT_INTEREST, serial)


async def test_push_notify_reaches_every_initialised_connection(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    async with RawClient.connect(simulator.host, simulator.port) as uninitialised:
        await uninitialised.keep_alive()  # refused, but the server has now seen the connection
        simulator.push_notify("maintenance")
        frame = await raw_client.receive()
        assert frame.proto_id == ProtoId.NOTIFY
        assert decode(frame, Notify_pb2.Response).s2c.event.desc == "maintenance"
        # The uninitialised connection gets nothing: its next frame is the reply to this.
        assert (await uninitialised.keep_alive()).retType == -1
        assert not uninitialised.skipped


async def test_unanswered_keepalive(simulator: OpenDSimulator, raw_client: RawClient) -> None:
    simulator.faults.answer_keepalive = False
    await raw_client.send(ProtoId.KEEP_ALIVE, KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=1)))
    # Replies go out in request order, so had the KeepAlive been answered it would come first.
    assert (await raw_client.global_state()).retType == 0
    assert (await raw_client.short_interest("US.AAPL")).retType == 0
    assert not raw_client.skipped
    assert simulator.stats.keepalives == 1


async def test_json_requests_get_json_replies(simulator: OpenDSimulator) -> None:
    async with RawClient.connect(simulator.host, simulator.port) as raw:
        init = await raw.init_connect(fmt=ProtoFmt.JSON)
        assert init.retType == 0
        assert init.s2c.connID

        security = short_interest_request(Market.US, "AAPL", num=3)
        serial = await raw.send(ProtoId.GET_SHORT_INTEREST, security, fmt=ProtoFmt.JSON)
        frame = await raw.receive()
        assert (frame.serial, frame.fmt) == (serial, ProtoFmt.JSON)
        body = json.loads(frame.body)
        assert body["retType"] == 0
        assert len(body["s2c"]["usItemList"]) == 3
        newest = simulator.history("US.AAPL")[0]
        assert body["s2c"]["usItemList"][0]["timestamp"] == str(newest.timestamp)

        unknown = short_interest_request(Market.US, "NOSUCH")
        await raw.send(ProtoId.GET_SHORT_INTEREST, unknown, fmt=ProtoFmt.JSON)
        body = json.loads((await raw.receive()).body)
        assert body["retType"] == -1
        assert body["retMsg"] == "unknown stock"


def test_simulator_thread_serves_sync_code() -> None:
    with SimulatorThread(quota=None) as sim:
        assert isinstance(sim, OpenDSimulator)
        with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
            decoder = FrameDecoder()
            init = InitConnect_pb2.Request()
            init.c2s.clientVer = 300
            init.c2s.clientID = "sync"
            sock.sendall(encode_frame(ProtoId.INIT_CONNECT, 1, init.SerializeToString()))
            request = short_interest_request(Market.HK, "00700", num=2)
            sock.sendall(encode_frame(ProtoId.GET_SHORT_INTEREST, 2, request.SerializeToString()))
            frames: list[Frame] = []
            while len(frames) < 2:
                data = sock.recv(65536)
                assert data
                frames.extend(decoder.feed(data))
        assert decode(frames[0], InitConnect_pb2.Response).s2c.connID
        page = decode(frames[1], Qot_GetShortInterest_pb2.Response)
        assert [as_row(i) for i in page.s2c.hkItemList] == sim.history("HK.00700")[:2]
        port = sim.port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_simulator_thread_reports_a_failed_start() -> None:
    with (
        SimulatorThread(quota=None) as sim,
        pytest.raises(OSError, match=str(sim.port)),
        SimulatorThread(port=sim.port),
    ):
        pass
