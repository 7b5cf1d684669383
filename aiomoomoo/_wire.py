"""OpenD framing, sans-IO: bytes in, frames out; frames in, bytes out.

Every OpenD message is a 44-byte little-endian header followed by the body. The header carries
the proto id, the body format, the serial number that pairs a reply with its request, the body
length on the wire and the SHA-1 of the plaintext body. Nothing here touches a socket, an event
loop or pandas, so the codec is tested with plain lists of byte chunks.

Encryption (issue: encrypted connections) fits in as a pair of body transforms: the SHA-1 is
always taken over the plaintext, the length over what travels.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Final, NamedTuple

from ._errors import ProtocolError

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "Frame",
    "FrameDecoder",
    "ProtoFmt",
    "ProtoId",
    "encode_frame",
]

#: The first two header bytes of every frame.
MAGIC: Final = b"FT"
_HEADER: Final = struct.Struct("<2sIBBII20s8s")
#: Size of the fixed frame header in bytes.
HEADER_SIZE: Final = _HEADER.size
#: Bodies larger than this are refused before any buffer is grown for them. Short interest
#: pages are a few kilobytes; 16 MiB leaves room for every OpenD reply while keeping a hostile
#: or corrupted header from making us allocate gigabytes.
DEFAULT_MAX_BODY_SIZE: Final = 16 * 1024 * 1024
_RESERVED: Final = bytes(8)
_MAX_U32: Final = 0xFFFFFFFF

BodyTransform = Callable[[bytes], bytes]
FrameDecrypt = Callable[[int, bytes], bytes]


class ProtoId:
    """The OpenD protocol ids aiomoomoo speaks."""

    INIT_CONNECT: Final = 1001
    GET_GLOBAL_STATE: Final = 1002
    NOTIFY: Final = 1003
    KEEP_ALIVE: Final = 1004
    GET_SHORT_INTEREST: Final = 3249


class ProtoFmt:
    """Body encodings named in the header's format byte."""

    PROTOBUF: Final = 0
    JSON: Final = 1


class Frame(NamedTuple):
    """One decoded OpenD message; ``body`` is the plaintext body."""

    proto_id: int
    serial: int
    body: bytes
    fmt: int = ProtoFmt.PROTOBUF
    version: int = 0


def encode_frame(
    proto_id: int,
    serial: int,
    body: bytes,
    *,
    fmt: int = ProtoFmt.PROTOBUF,
    encrypt: BodyTransform | None = None,
) -> bytes:
    """Return the bytes of one frame: header plus body, the body encrypted if ``encrypt`` is given.

    ``proto_id`` and ``serial`` must fit in an unsigned 32-bit integer.
    """
    if not 0 <= proto_id <= _MAX_U32:
        raise ValueError(f"proto_id {proto_id!r} is not an unsigned 32-bit integer")
    if not 0 <= serial <= _MAX_U32:
        raise ValueError(f"serial {serial!r} is not an unsigned 32-bit integer")
    digest = hashlib.sha1(body).digest()
    wire_body = encrypt(body) if encrypt is not None else body
    header = _HEADER.pack(MAGIC, proto_id, fmt, 0, serial, len(wire_body), digest, _RESERVED)
    return header + wire_body


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, however split or coalesced.

    ``feed`` returns the frames completed by the new bytes, in stream order. A bad magic, a body
    length over ``max_body_size`` or a SHA-1 mismatch raises `ProtocolError`; the stream
    cannot be trusted after that, so the decoder refuses further input.

    ``decrypt``, when given, is called with the proto id and the wire body of each frame, in
    stream order, and returns the plaintext that the SHA-1 is checked against; OpenD encrypts
    InitConnect differently from the rest, hence the proto id. An exception from it becomes a
    `ProtocolError`.
    """

    __slots__ = ("_broken", "_buffer", "decrypt", "max_body_size")

    def __init__(
        self,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        decrypt: FrameDecrypt | None = None,
    ) -> None:
        if max_body_size < 1:
            raise ValueError(f"max_body_size must be at least 1, got {max_body_size!r}")
        self.max_body_size = max_body_size
        self.decrypt = decrypt
        self._buffer = bytearray()
        self._broken: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; return every frame they complete."""
        if self._broken is not None:
            raise ProtocolError(f"decoder already failed: {self._broken}")
        buffer = self._buffer
        if not buffer and type(data) is bytes:
            # Nothing held back (the usual case): frames are cut straight out of ``data``, one
            # copy per body, and only an unfinished tail is kept.
            source: bytes | bytearray = data
        else:
            buffer += data
            source = buffer
        frames: list[Frame] = []
        offset = 0
        size = len(source)
        try:
            while size - offset >= HEADER_SIZE:
                magic, proto_id, fmt, version, serial, body_len, digest, _ = _HEADER.unpack_from(
                    source, offset
                )
                if magic != MAGIC:
                    raise ProtocolError(
                        f"bad frame magic {bytes(magic)!r} (expected {MAGIC!r}); "
                        "is this port really OpenD?"
                    )
                if body_len > self.max_body_size:
                    raise ProtocolError(
                        f"frame for proto {proto_id} announces a {body_len}-byte body, "
                        f"over the {self.max_body_size}-byte limit"
                    )
                end = offset + HEADER_SIZE + body_len
                if end > size:
                    break
                body = bytes(source[offset + HEADER_SIZE : end])
                if self.decrypt is not None:
                    try:
                        body = self.decrypt(proto_id, body)
                    except ProtocolError:
                        raise
                    except Exception as exc:
                        raise ProtocolError(
                            f"cannot decrypt frame for proto {proto_id} serial {serial}: {exc}"
                        ) from exc
                if hashlib.sha1(body).digest() != digest:
                    raise ProtocolError(
                        f"SHA-1 mismatch in frame for proto {proto_id} serial {serial}: "
                        "the body is corrupt or was decrypted with the wrong key"
                    )
                frames.append(Frame(proto_id, serial, body, fmt, version))
                offset = end
        except ProtocolError as exc:
            self._broken = exc
            raise
        finally:
            if source is buffer:
                if offset:
                    del buffer[:offset]
            elif offset < size:
                buffer += source[offset:]
        return frames
