"""OpenD framing, sans-IO: bytes in, frames out; frames in, bytes out.

Every OpenD message is a 44-byte little-endian header followed by the body. The header carries
the proto id, the body format, the serial number that pairs a reply with its request, the body
length on the wire and the SHA-1 of the plaintext body. Nothing here touches a socket, an event
loop or pandas, so the codec is tested with plain lists of byte chunks.

The decoder pulls, as h11 does: the caller hands it received bytes, then takes one frame at a
time and may change state in between. Encryption fits in as a pair of body transforms: the SHA-1
is always taken over the plaintext, the length over what travels.
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
    """Incremental pull decoder: hand it bytes as they arrive, then take frames one at a time.

    `receive` stores bytes however split or coalesced; `next_frame` returns the next whole frame
    in stream order, or None until more bytes arrive. A frame is decrypted and its SHA-1 checked
    only when it is taken, so the caller may change state between two frames of one read: the
    client installs the AES key that InitConnect's reply names before it takes the next frame.
    `feed` does both for callers that want every frame at once.

    A bad magic, a body length over ``max_body_size`` or a SHA-1 mismatch raises `ProtocolError`;
    the stream cannot be trusted after that, so the decoder refuses further input and frames.

    ``decrypt``, when given, is called with the proto id and the wire body of each frame as it
    is taken, and returns the plaintext that the SHA-1 is checked against; OpenD encrypts
    InitConnect differently from the rest, hence the proto id. An exception from it becomes a
    `ProtocolError`.
    """

    __slots__ = ("_broken", "_data", "_offset", "decrypt", "max_body_size")

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
        # Bytes not yet taken are ``_data[_offset:]``. With nothing held back (the usual case) a
        # read's own bytes object is kept and frames are cut straight out of it, one copy per
        # body; only a partial frame is copied into a bytearray to wait for the rest.
        self._data: bytes | bytearray = b""
        self._offset = 0
        self._broken: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet taken as part of a frame."""
        return len(self._data) - self._offset

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; take the frames they complete with `next_frame`."""
        held = self._data
        if not held and type(data) is bytes:
            # Nothing held back, so not broken either: a failed decoder keeps the bytes it
            # failed on.
            self._data = data
            return
        if self._broken is not None:
            raise ProtocolError(f"decoder already failed: {self._broken}")
        if type(held) is bytearray:
            if self._offset:
                del held[: self._offset]
        else:
            held = bytearray(memoryview(held)[self._offset :])
        held += data
        self._data = held
        self._offset = 0

    def next_frame(self) -> Frame | None:
        """Take the next whole frame, decrypted and checked; None until more bytes arrive."""
        data = self._data
        if not data:
            return None  # not broken either: a failed decoder keeps the bytes it failed on
        if self._broken is not None:
            raise ProtocolError(f"decoder already failed: {self._broken}")
        offset = self._offset
        size = len(data)
        if size - offset < HEADER_SIZE:
            if offset:
                self._hold_back()
            return None
        try:
            magic, proto_id, fmt, version, serial, body_len, digest, _ = _HEADER.unpack_from(
                data, offset
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
                if offset:
                    self._hold_back()
                return None
            body = data[offset + HEADER_SIZE : end]
            if type(body) is not bytes:
                body = bytes(body)  # cut from the bytearray of a frame that came in pieces
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
        except ProtocolError as exc:
            self._broken = exc
            raise
        if end == size:
            self._data = b""
            self._offset = 0
        else:
            self._offset = end
        return Frame(proto_id, serial, body, fmt, version)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes and take every frame they complete, in stream order."""
        self.receive(data)
        frames: list[Frame] = []
        while self._data and (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def _hold_back(self) -> None:
        """Keep only the partial frame at the end, so a large read is not held for its tail."""
        data = self._data
        if type(data) is bytearray:
            del data[: self._offset]
        else:
            self._data = bytearray(memoryview(data)[self._offset :])
        self._offset = 0
