"""OpenD's own texts (``lang``), and the faults users can inject to test their own bots."""

from __future__ import annotations

import asyncio

import pytest

from aiomoomoo import Client, ConnectError, ProtocolError, RateLimitError
from aiomoomoo._errors import server_error
from aiomoomoo._proto import Qot_GetShortInterest_pb2
from aiomoomoo._security import Market
from aiomoomoo._wire import ProtoId
from aiomoomoo.testing import Faults, Lang, OpenDSimulator, Quota

from .._fakes import FakeClock
from .conftest import PeerClosed, RawClient, connected, decode, short_interest_request

pytestmark = pytest.mark.anyio


# -- OpenD's texts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "lang", "text"),
    [
        (
            Quota(),
            "en",
            "Get Short Interest is too frequent, request failed, "
            "no more than 30 times every 30 seconds.",
        ),
        (Quota(), "zh", "获取卖空数据频率太高，请求失败，每30秒最多30次。"),  # noqa: RUF001
        (
            Quota(5, 0.5),
            "en",
            "Get Short Interest is too frequent, request failed, "
            "no more than 5 times every 0.5 seconds.",
        ),
        (Quota(7, 1.25), "zh", "获取卖空数据频率太高，请求失败，每1.25秒最多7次。"),  # noqa: RUF001
    ],
)
async def test_refusals_use_opends_template_with_the_real_quota(
    quota: Quota, lang: Lang, text: str
) -> None:
    clock = FakeClock(1000.0)
    async with OpenDSimulator(quota=quota, lang=lang, clock=clock) as sim, connected(sim) as raw:
        for _ in range(quota.max_requests):
            assert (await raw.short_interest("US.AAPL", num=1)).retType == 0
        refused = await raw.short_interest("US.AAPL", num=1)
        assert (refused.retType, refused.retMsg) == (-1, text)
    # The client knows it for what it is, in either language.
    error = server_error(text, ret_type=-1, err_code=refused.errCode, proto_id=3249)
    assert isinstance(error, RateLimitError)


async def test_lang_can_change_while_serving() -> None:
    async with OpenDSimulator(quota=None) as sim, connected(sim) as raw:
        assert (await raw.short_interest("HK.NOPE")).retMsg == "unknown stock"
        sim.lang = "zh"
        assert (await raw.short_interest("HK.NOPE")).retMsg == "未知股票"


def test_lang_is_checked() -> None:
    with pytest.raises(ValueError, match="lang must be 'en' or 'zh'"):
        OpenDSimulator(lang="fr")  # type: ignore[arg-type]
    sim = OpenDSimulator()
    with pytest.raises(ValueError, match="'chs'"):
        sim.lang = "chs"  # type: ignore[assignment]
    assert sim.lang == "en"


# -- message-level faults ---------------------------------------------------------------------


async def test_silent_reads_everything_and_answers_nothing(simulator: OpenDSimulator) -> None:
    simulator.faults.silent = True
    async with RawClient.connect(simulator.host, simulator.port) as raw:
        await raw.send(ProtoId.INIT_CONNECT, short_interest_request(Market.US, "AAPL"))
        with pytest.raises(TimeoutError):
            await raw.receive(timeout=0.2)
        assert simulator.connection_count == 1  # the socket stays open
    # A client sees a gateway that accepted the connection and never completed InitConnect.
    client = Client(simulator.host, simulator.port, connect_timeout=0.2)
    with pytest.raises(ConnectError, match="did not complete InitConnect"):
        await client.connect()
    await client.close()


async def test_close_after_init_connect(simulator: OpenDSimulator) -> None:
    simulator.faults.close_after_init_connect = True
    async with RawClient.connect(simulator.host, simulator.port) as raw:
        assert (await raw.init_connect()).retType == 0
        with pytest.raises(PeerClosed):
            await raw.receive()


async def test_a_poison_code_drops_the_connection(simulator: OpenDSimulator) -> None:
    simulator.faults.poison_codes = {"HK.00700"}
    async with connected(simulator) as raw:
        assert (await raw.short_interest("US.AAPL")).retType == 0
        await raw.send(ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.HK, "00700"))
        with pytest.raises(PeerClosed):
            await raw.receive()
    assert simulator.stats.dropped == 1
    async with connected(simulator) as again:
        assert (await again.short_interest("US.TSLA")).retType == 0


async def test_wrong_proto_id_every(simulator: OpenDSimulator, raw_client: RawClient) -> None:
    simulator.faults.wrong_proto_id_every = 2
    proto_ids = []
    for _ in range(4):
        serial = await raw_client.send(
            ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.US, "AAPL", num=1)
        )
        frame = await raw_client.receive()
        assert frame.serial == serial
        assert decode(frame, Qot_GetShortInterest_pb2.Response).retType == 0
        proto_ids.append(frame.proto_id)
    assert proto_ids == [3249, 1004, 3249, 1004]


async def test_refuse_every_refuses_in_opends_words(simulator: OpenDSimulator) -> None:
    simulator.faults.refuse_every = 3
    async with connected(simulator) as raw:
        pages = [await raw.short_interest("US.AAPL", num=1) for _ in range(7)]
    assert [page.retType for page in pages] == [0, 0, -1, 0, 0, -1, 0]
    assert "is too frequent, request failed, no more than 30 times every 30" in pages[2].retMsg
    assert simulator.stats.rate_limited == 2
    assert simulator.stats.accepted == 5


async def test_strict_quota_refuses_earlier_than_announced() -> None:
    clock = FakeClock(1000.0)
    faults = Faults(strict_quota=Quota(2, 0.5))
    async with OpenDSimulator(faults=faults, clock=clock) as sim, connected(sim) as raw:
        assert (await raw.short_interest("US.AAPL")).retType == 0
        assert (await raw.short_interest("US.AAPL")).retType == 0
        refused = await raw.short_interest("US.AAPL")
        # The text quotes the announced 30 in 30 seconds, not the stricter truth.
        assert refused.retMsg.endswith("no more than 30 times every 30 seconds.")
        clock.advance(0.5)
        assert (await raw.short_interest("US.AAPL")).retType == 0
        assert sim.stats.accepted_at == [clock.now - 0.5] * 2 + [clock.now]


# -- stream-level faults (TCP) ----------------------------------------------------------------


async def test_corrupt_every_breaks_the_sha1(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    simulator.faults.corrupt_every = 2
    assert (await raw_client.short_interest("US.AAPL")).retType == 0
    await raw_client.send(ProtoId.GET_SHORT_INTEREST, short_interest_request(Market.US, "AAPL"))
    with pytest.raises(ProtocolError, match="SHA-1 mismatch"):
        await raw_client.receive()


async def test_a_corrupt_frame_is_a_protocol_error_for_the_client(
    simulator: OpenDSimulator,
) -> None:
    async with Client(simulator.host, simulator.port, rate_limit=None, retries=3) as client:
        simulator.faults.corrupt_every = 1
        with pytest.raises(ProtocolError, match="SHA-1 mismatch"):
            await client.get_short_interest("HK.00700")
    # A corrupt frame breaks one connection; a peer that keeps corrupting is given up on after
    # the retries.
    assert simulator.stats.requests == 4


async def test_trickle_sends_a_reply_byte_by_byte(
    simulator: OpenDSimulator, raw_client: RawClient
) -> None:
    whole = await raw_client.short_interest("US.AAPL", num=1)
    frame_size = 44 + whole.ByteSize()
    simulator.faults.trickle = 0.002
    raw_client.read_sizes.clear()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await raw_client.short_interest("US.AAPL", num=1) == whole
    assert loop.time() - started >= frame_size * 0.002 * 0.9
    assert sum(raw_client.read_sizes) == frame_size
    assert len(raw_client.read_sizes) > frame_size // 4


def test_faults_are_checked() -> None:
    with pytest.raises(ValueError, match=r"Faults\.refuse_every must be None or a whole number"):
        Faults(refuse_every=0)
    with pytest.raises(ValueError, match=r"Faults\.corrupt_every"):
        Faults(corrupt_every=True)
    with pytest.raises(ValueError, match=r"Faults\.trickle must be a finite number"):
        Faults(trickle=-1.0)
    with pytest.raises(TypeError, match="poison_codes must be a collection"):
        Faults(poison_codes="US.AAPL")
    assert Faults(drop_after=0).drop_after == 0
