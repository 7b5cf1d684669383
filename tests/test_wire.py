"""The sans-IO frame codec: protocol test vectors, round trips, chunking and hostile input."""

from __future__ import annotations

import hashlib
import itertools
import struct
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomoomoo._errors import ProtocolError
from aiomoomoo._proto import (
    InitConnect_pb2,
    KeepAlive_pb2,
    Qot_Common_pb2,
    Qot_GetShortInterest_pb2,
)
from aiomoomoo._wire import (
    HEADER_SIZE,
    MAGIC,
    BodyTransform,
    Frame,
    FrameDecoder,
    ProtoFmt,
    ProtoId,
    encode_frame,
)

U32 = 0xFFFFFFFF
# The header layout as the protocol document states it (constant.py's "<1s1sI2B2I20s8s"), kept
# independent of _wire's own struct so a mistake there cannot hide in both places.
HEADER = struct.Struct("<1s1sI2B2I20s8s")


def make_header(
    proto_id: int,
    serial: int,
    body_len: int,
    digest: bytes = bytes(20),
    *,
    magic: bytes = MAGIC,
) -> bytes:
    return HEADER.pack(magic[:1], magic[1:], proto_id, 0, 0, serial, body_len, digest, bytes(8))


def decode_all(chunks: list[bytes]) -> list[Frame]:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
    assert decoder.buffered == 0
    return frames


def test_header_size_matches_protocol() -> None:
    assert HEADER_SIZE == HEADER.size == 44
    assert MAGIC == b"FT"


# --- Test vectors from section 1 of the protocol document ---


def test_keep_alive_vector() -> None:
    body = KeepAlive_pb2.Request(c2s=KeepAlive_pb2.C2S(time=1_700_000_000)).SerializeToString()
    assert body == bytes.fromhex("0a 06 08 80 e2 cf aa 06")

    frame = encode_frame(ProtoId.KEEP_ALIVE, 1234, body)

    assert frame[:16] == bytes.fromhex("46 54 ec 03 00 00 00 00 d2 04 00 00 08 00 00 00")
    assert frame[16:36] == bytes.fromhex(
        "a5 74 90 4e 7c 77 8a f7 b8 4d 66 be bd fd a3 c5 55 3a 55 58"
    )
    assert frame[36:44] == bytes(8)
    assert frame[44:] == body
    assert FrameDecoder().feed(frame) == [Frame(1004, 1234, body, ProtoFmt.PROTOBUF, 0)]


def test_init_connect_default_body_vector() -> None:
    c2s = InitConnect_pb2.C2S(
        clientVer=300,
        clientID="PyNormal",
        recvNotify=True,
        packetEncAlgo=-1,
        pushProtoFmt=0,
        programmingLanguage="Python",
        aiType=0,
    )
    body = InitConnect_pb2.Request(c2s=c2s).SerializeToString()

    assert len(body) == 40
    assert body == bytes.fromhex(
        "0a 26 08 ac 02 12 08 50 79 4e 6f 72 6d 61 6c 18 01 20 ff ff ff ff ff ff ff ff ff 01"
        " 28 00 32 06 50 79 74 68 6f 6e 38 00"
    )
    assert hashlib.sha1(body).hexdigest() == "85a9e559ffd2b280eb0b8a2c51cf71cb67ff66d2"
    assert encode_frame(ProtoId.INIT_CONNECT, 1, body)[16:36] == hashlib.sha1(body).digest()


def test_short_interest_request_vector() -> None:
    security = Qot_Common_pb2.Security(market=Qot_Common_pb2.QotMarket_US_Security, code="AAPL")
    request = Qot_GetShortInterest_pb2.Request(c2s=Qot_GetShortInterest_pb2.C2S(security=security))

    assert request.SerializeToString() == bytes.fromhex("0a 0a 0a 08 08 0b 12 04 41 41 50 4c")


def test_smallest_short_interest_response_vector() -> None:
    response = Qot_GetShortInterest_pb2.Response(
        retType=0, s2c=Qot_GetShortInterest_pb2.S2C(nextKey="-1")
    )
    body = response.SerializeToString()

    # proto2 keeps an explicitly set zero on the wire: retType=0 is "08 00".
    assert body == bytes.fromhex("08 00 22 04 1a 02 2d 31")
    assert hashlib.sha1(body).hexdigest() == "fa350228f107a47b63ea0a04fda36e051e8dbff7"

    [frame] = FrameDecoder().feed(encode_frame(ProtoId.GET_SHORT_INTEREST, 7, body))
    parsed = Qot_GetShortInterest_pb2.Response.FromString(frame.body)
    assert (frame.proto_id, frame.serial) == (3249, 7)
    assert (parsed.retType, parsed.s2c.nextKey) == (0, "-1")


# --- Round trips ---


@pytest.mark.parametrize(
    ("proto_id", "serial", "body"),
    [
        (ProtoId.KEEP_ALIVE, 0, b"\x08\x01"),
        (0, U32, b"x" * 1000),
        (U32, 1, b"\x00"),
        (ProtoId.NOTIFY, 42, b""),
    ],
)
def test_round_trip(proto_id: int, serial: int, body: bytes) -> None:
    data = encode_frame(proto_id, serial, body, fmt=ProtoFmt.JSON)

    assert len(data) == HEADER_SIZE + len(body)
    assert FrameDecoder().feed(data) == [Frame(proto_id, serial, body, ProtoFmt.JSON, 0)]


def test_empty_body_is_decoded_without_waiting_for_more_bytes() -> None:
    # The official client only parses when more than 44 bytes are buffered; we must not copy that.
    assert FrameDecoder().feed(encode_frame(ProtoId.KEEP_ALIVE, 5, b"")) == [
        Frame(ProtoId.KEEP_ALIVE, 5, b"")
    ]


def test_partial_frame_stays_buffered() -> None:
    data = encode_frame(ProtoId.KEEP_ALIVE, 9, b"abcdef")
    decoder = FrameDecoder()

    assert decoder.feed(data[:10]) == []
    assert decoder.buffered == 10
    assert decoder.feed(memoryview(data)[10:-1]) == []
    assert decoder.buffered == len(data) - 1
    assert decoder.feed(bytearray(data[-1:])) == [Frame(ProtoId.KEEP_ALIVE, 9, b"abcdef")]
    assert decoder.buffered == 0


def test_body_transforms_hash_the_plaintext_and_frame_the_ciphertext() -> None:
    def encrypt(body: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in body) + b"pad"

    seen: list[int] = []

    def decrypt(proto_id: int, body: bytes) -> bytes:
        seen.append(proto_id)
        return bytes(b ^ 0x5A for b in body[:-3])

    plaintext = b"hello opend"
    data = encode_frame(ProtoId.GET_SHORT_INTEREST, 3, plaintext, encrypt=encrypt)
    _, _, _, _, _, _, body_len, digest, _ = HEADER.unpack_from(data)

    assert body_len == len(plaintext) + 3
    assert digest == hashlib.sha1(plaintext).digest()
    assert data[HEADER_SIZE:] == encrypt(plaintext)
    assert FrameDecoder(decrypt=decrypt).feed(data) == [
        Frame(ProtoId.GET_SHORT_INTEREST, 3, plaintext)
    ]
    assert seen == [ProtoId.GET_SHORT_INTEREST]


def test_a_failing_decrypt_is_a_protocol_error_and_breaks_the_decoder() -> None:
    def decrypt(proto_id: int, body: bytes) -> bytes:
        raise ValueError("bad padding")

    decoder = FrameDecoder(decrypt=decrypt)
    data = encode_frame(ProtoId.KEEP_ALIVE, 1, b"body")
    with pytest.raises(ProtocolError, match=r"cannot decrypt frame for proto 1004.*bad padding"):
        decoder.feed(data)
    with pytest.raises(ProtocolError, match="already failed"):
        decoder.feed(data)


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("bad padding"),
        TypeError("not bytes"),
        IndexError("index out of range"),
        KeyError("no key"),
        struct.error("unpack requires a buffer"),
        OverflowError("too large"),
        RuntimeError("a backend's own error"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_any_exception_from_decrypt_is_a_protocol_error(failure: Exception) -> None:
    # Whatever the cipher raises on a body that cannot be ours, the connection sees the one
    # error it handles (a ProtocolError breaks it and is resent); anything else would escape
    # the reader and leave requests waiting for ever.
    def decrypt(proto_id: int, body: bytes) -> bytes:
        raise failure

    with pytest.raises(ProtocolError, match="cannot decrypt frame for proto 1004") as caught:
        FrameDecoder(decrypt=decrypt).feed(encode_frame(ProtoId.KEEP_ALIVE, 1, b"body"))
    assert caught.value.__cause__ is failure


# --- The pull API: receive, then take one frame at a time ---


def test_coalesced_frames_are_taken_one_at_a_time() -> None:
    first = encode_frame(ProtoId.INIT_CONNECT, 1, b"first")
    second = encode_frame(ProtoId.KEEP_ALIVE, 2, b"second")
    decoder = FrameDecoder()

    decoder.receive(first + second)
    assert decoder.buffered == len(first) + len(second)
    assert decoder.next_frame() == Frame(ProtoId.INIT_CONNECT, 1, b"first")
    assert decoder.buffered == len(second)
    assert decoder.next_frame() == Frame(ProtoId.KEEP_ALIVE, 2, b"second")
    assert decoder.buffered == 0
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None


def test_a_split_frame_is_taken_once_its_last_byte_arrives() -> None:
    data = encode_frame(ProtoId.KEEP_ALIVE, 9, b"abcdef")
    decoder = FrameDecoder()
    assert decoder.next_frame() is None

    decoder.receive(data[:10])
    assert decoder.next_frame() is None
    decoder.receive(memoryview(data)[10:-1])
    assert decoder.next_frame() is None
    assert decoder.buffered == len(data) - 1
    decoder.receive(bytearray(data[-1:]))
    assert decoder.next_frame() == Frame(ProtoId.KEEP_ALIVE, 9, b"abcdef")
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


def test_bytes_received_before_earlier_frames_are_taken_keep_their_order() -> None:
    frames = [encode_frame(ProtoId.NOTIFY, serial, bytes([serial]) * serial) for serial in range(5)]
    stream = b"".join(frames)
    decoder = FrameDecoder()

    decoder.receive(stream[: len(frames[0]) + 3])  # the first frame and the next one's start
    assert decoder.next_frame() == Frame(ProtoId.NOTIFY, 0, b"")
    decoder.receive(stream[len(frames[0]) + 3 : -2])  # more arrives before anything is taken
    decoder.receive(stream[-2:])
    taken = []
    while (frame := decoder.next_frame()) is not None:
        taken.append(frame.serial)
    assert taken == [1, 2, 3, 4]
    assert decoder.buffered == 0


def test_a_frame_is_decrypted_when_it_is_taken_so_state_may_change_in_between() -> None:
    keys = [0x11]

    def decrypt(proto_id: int, body: bytes) -> bytes:
        return bytes(b ^ keys[-1] for b in body)

    def encrypt_with(key: int) -> BodyTransform:
        return lambda body: bytes(b ^ key for b in body)

    data = encode_frame(ProtoId.INIT_CONNECT, 1, b"key is 0x22", encrypt=encrypt_with(0x11))
    data += encode_frame(ProtoId.NOTIFY, 2, b"secret", encrypt=encrypt_with(0x22))
    decoder = FrameDecoder(decrypt=decrypt)

    decoder.receive(data)
    assert decoder.next_frame() == Frame(ProtoId.INIT_CONNECT, 1, b"key is 0x22")
    keys.append(0x22)
    assert decoder.next_frame() == Frame(ProtoId.NOTIFY, 2, b"secret")
    # All at once, the second frame meets the first key: the SHA-1 check refuses it.
    keys[:] = [0x11]
    with pytest.raises(ProtocolError, match="SHA-1 mismatch in frame for proto 1003 serial 2"):
        FrameDecoder(decrypt=decrypt).feed(data)


def test_frames_before_a_bad_one_are_taken_and_then_the_decoder_refuses_everything() -> None:
    good = encode_frame(ProtoId.KEEP_ALIVE, 1, b"\x08\x01")
    bad = bytearray(encode_frame(ProtoId.KEEP_ALIVE, 2, b"\x08\x02"))
    bad[-1] ^= 0xFF
    decoder = FrameDecoder()

    decoder.receive(good + bad + good)
    assert decoder.next_frame() == Frame(ProtoId.KEEP_ALIVE, 1, b"\x08\x01")
    with pytest.raises(ProtocolError, match="SHA-1 mismatch in frame for proto 1004 serial 2"):
        decoder.next_frame()
    with pytest.raises(ProtocolError, match="decoder already failed: SHA-1 mismatch"):
        decoder.next_frame()
    with pytest.raises(ProtocolError, match="decoder already failed"):
        decoder.receive(good)
    with pytest.raises(ProtocolError, match="decoder already failed"):
        decoder.feed(b"")


def test_an_oversize_header_behind_a_good_frame_is_refused_when_reached() -> None:
    good = encode_frame(ProtoId.NOTIFY, 1, b"z" * 10)
    decoder = FrameDecoder(max_body_size=100)

    decoder.receive(good + make_header(ProtoId.NOTIFY, 2, 101))
    assert decoder.next_frame() == Frame(ProtoId.NOTIFY, 1, b"z" * 10)
    with pytest.raises(ProtocolError, match=r"101-byte body, over the 100-byte limit"):
        decoder.next_frame()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="counts CPython references")
def test_a_partial_tail_does_not_keep_its_whole_read_alive() -> None:
    # Frames are cut straight out of a read's bytes; the unfinished tail alone must be kept.
    frame = encode_frame(ProtoId.NOTIFY, 1, bytes(1000))
    read = frame * 100 + frame[:50]
    decoder = FrameDecoder()
    decoder.receive(read)
    for _ in range(100):
        assert decoder.next_frame() is not None
    assert decoder.next_frame() is None
    assert sys.getrefcount(read) == 2  # ``read`` and getrefcount's argument: nobody else
    assert decoder.buffered == 50
    decoder.receive(frame[50:])
    assert decoder.next_frame() == Frame(ProtoId.NOTIFY, 1, bytes(1000))


# --- Property-based: chunking and garbage ---

frames_strategy = st.lists(
    st.builds(
        Frame,
        proto_id=st.integers(0, U32),
        serial=st.integers(0, U32),
        body=st.binary(max_size=200),
        fmt=st.sampled_from([ProtoFmt.PROTOBUF, ProtoFmt.JSON]),
        version=st.just(0),
    ),
    max_size=8,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (clamped, in any order), keeping empty chunks."""
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@settings(deadline=None)
@given(frames=frames_strategy, data=st.data())
def test_any_chunking_decodes_the_same_frames(frames: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(f.proto_id, f.serial, f.body, fmt=f.fmt) for f in frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")

    assert decode_all(split(stream, cuts)) == frames


@settings(deadline=None)
@given(frames=frames_strategy, data=st.data())
def test_pulling_any_number_of_frames_between_reads_takes_the_same_frames(
    frames: list[Frame], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(f.proto_id, f.serial, f.body, fmt=f.fmt) for f in frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")
    decoder = FrameDecoder()
    taken: list[Frame] = []
    for chunk in split(stream, cuts):
        decoder.receive(chunk)
        for _ in range(data.draw(st.integers(0, 3), label="pulls")):
            if (frame := decoder.next_frame()) is not None:
                taken.append(frame)
    while (frame := decoder.next_frame()) is not None:
        taken.append(frame)

    assert taken == frames
    assert decoder.buffered == 0


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    """Bytes that are sometimes garbage, sometimes valid frames, sometimes valid but damaged."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["garbage", "frame", "damaged", "header"]))
        if kind == "garbage":
            parts.append(draw(st.binary(max_size=120)))
        elif kind == "header":
            # Plausible headers with arbitrary lengths and digests, body possibly missing.
            body_len = draw(st.integers(0, U32))
            parts.append(
                make_header(
                    draw(st.integers(0, U32)),
                    0,
                    body_len,
                    draw(st.binary(min_size=20, max_size=20)),
                )
            )
            parts.append(draw(st.binary(max_size=64)))
        else:
            frame = encode_frame(
                draw(st.integers(0, U32)), draw(st.integers(0, U32)), draw(st.binary(max_size=64))
            )
            if kind == "damaged":
                index = draw(st.integers(0, len(frame) - 1))
                flip = draw(st.integers(1, 255))
                frame = frame[:index] + bytes([frame[index] ^ flip]) + frame[index + 1 :]
            parts.append(frame)
    return b"".join(parts)


@settings(deadline=None)
@given(stream=hostile_streams(), data=st.data())
def test_garbage_raises_only_protocol_error(stream: bytes, data: st.DataObject) -> None:
    max_body_size = data.draw(st.sampled_from([1, 64, 1024, 16 * 1024 * 1024]), label="limit")
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    decoder = FrameDecoder(max_body_size=max_body_size)

    for chunk in split(stream, cuts):
        try:
            frames = decoder.feed(chunk)
        except ProtocolError:
            with pytest.raises(ProtocolError):
                decoder.feed(b"")
            return
        assert all(isinstance(frame, Frame) for frame in frames)
        # What stays buffered is one incomplete frame of allowed size: memory use is bounded.
        assert decoder.buffered < HEADER_SIZE + max_body_size


# --- Errors ---


def test_bad_magic() -> None:
    decoder = FrameDecoder()
    data = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" + bytes(20)

    with pytest.raises(ProtocolError, match=r"bad frame magic b'GE' \(expected b'FT'\)"):
        decoder.feed(data)


def test_bad_magic_is_detected_before_the_body_arrives() -> None:
    header = make_header(ProtoId.KEEP_ALIVE, 1, 10, magic=b"TF")

    with pytest.raises(ProtocolError, match="magic"):
        FrameDecoder().feed(header)


def test_sha1_mismatch() -> None:
    data = bytearray(encode_frame(ProtoId.GET_SHORT_INTEREST, 77, b"\x08\x00"))
    data[-1] ^= 0x01

    with pytest.raises(ProtocolError, match="SHA-1 mismatch in frame for proto 3249 serial 77"):
        FrameDecoder().feed(data)


def test_body_at_the_size_limit_is_accepted() -> None:
    body = b"z" * 100
    frames = FrameDecoder(max_body_size=100).feed(encode_frame(ProtoId.NOTIFY, 1, body))

    assert frames == [Frame(ProtoId.NOTIFY, 1, body)]


def test_oversize_body_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(max_body_size=100)
    header = encode_frame(ProtoId.NOTIFY, 1, b"z" * 101)[:HEADER_SIZE]

    # Only the header is fed: the decoder must not wait for the 101 announced bytes.
    with pytest.raises(ProtocolError, match=r"101-byte body, over the 100-byte limit"):
        decoder.feed(header)


def test_huge_announced_body_allocates_nothing() -> None:
    header = make_header(ProtoId.GET_SHORT_INTEREST, 1, U32)
    decoder = FrameDecoder()

    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match=rf"announces a {U32}-byte body"):
            decoder.feed(header)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 1024 * 1024
    assert decoder.buffered == HEADER_SIZE


def test_decoder_refuses_input_after_failing() -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match="magic"):
        decoder.feed(b"XX" + bytes(HEADER_SIZE))

    valid = encode_frame(ProtoId.KEEP_ALIVE, 1, b"\x08\x01")
    with pytest.raises(ProtocolError, match="decoder already failed: bad frame magic"):
        decoder.feed(valid)
    with pytest.raises(ProtocolError, match="already failed"):
        decoder.feed(b"")


def test_invalid_max_body_size() -> None:
    with pytest.raises(ValueError, match="max_body_size must be at least 1, got 0"):
        FrameDecoder(max_body_size=0)


@pytest.mark.parametrize(
    ("proto_id", "serial", "message"),
    [
        (-1, 1, r"proto_id -1 is not an unsigned 32-bit integer"),
        (U32 + 1, 1, r"proto_id 4294967296 is not an unsigned 32-bit integer"),
        (ProtoId.KEEP_ALIVE, -1, r"serial -1 is not an unsigned 32-bit integer"),
        (ProtoId.KEEP_ALIVE, U32 + 1, r"serial 4294967296 is not an unsigned 32-bit integer"),
    ],
)
def test_encode_frame_rejects_out_of_range_ids(proto_id: int, serial: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_frame(proto_id, serial, b"")
