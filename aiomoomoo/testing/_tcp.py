"""The simulator's TCP transport: OpenD's framing and encryption around the request handler.

Each connection decodes frames with `aiomoomoo._wire.FrameDecoder` (decrypting as OpenD does when
the simulator has an RSA key), hands each request to the `RequestHandler`, and writes the
replies back as frames. The stream-level faults (replies cut into small writes) live here.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from .._crypto import AesCipher, RsaCipher
from .._errors import ProtocolError
from .._wire import FrameDecoder, ProtoId, encode_frame
from ._handler import Reply, RequestHandler
from ._link import Link
from ._stats import DEFAULT_LIMITS, Limits

__all__ = ["TcpLink"]

logger = logging.getLogger("aiomoomoo.testing")

_READ_SIZE = 256 * 1024
# Pause between the small writes of `Faults.split_writes`, so the peer really sees partial frames.
_SPLIT_PAUSE = 0.0005
# The first byte of the header's SHA-1 (after magic, proto id, format, version, serial, length).
_SHA1_OFFSET = 2 + 4 + 1 + 1 + 4 + 4


class TcpLink(Link):
    """One TCP client of the simulator; `serve` runs it until either side closes."""

    def __init__(
        self,
        handler: RequestHandler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        rsa: RsaCipher | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        session = handler.open_session(encryption_required=rsa is not None)
        super().__init__(handler, session, max_pending=limits.max_pending)
        self.reader = reader
        self.writer = writer
        self.rsa = rsa
        self.limits = limits
        self._aes: AesCipher | None = None
        self._short_interest_replies = 0

    async def serve(self) -> None:
        """Read, answer and write until the peer or the simulator closes the connection."""
        decoder = FrameDecoder(
            max_body_size=self.limits.max_request_size,
            decrypt=self._decrypt if self.rsa is not None else None,
        )
        handle = self.handler.handle
        loop = asyncio.get_running_loop()
        opened = last_request = loop.time()
        greeted = False
        try:
            while True:
                async with asyncio.timeout_at(self._deadline(opened, last_request, greeted)):
                    data = await self.reader.read(_READ_SIZE)
                    if not data:
                        return
                    for frame in decoder.feed(data):
                        if self.closed:
                            return
                        last_request = loop.time()
                        greeted = greeted or frame.proto_id == ProtoId.INIT_CONNECT
                        answer = handle(
                            self.session, frame.proto_id, frame.serial, frame.body, fmt=frame.fmt
                        )
                        self.answer(answer)
                        await self.wait_writable()
        except TimeoutError:
            logger.info("simulator closing %s", self._timed_out(greeted))
        except ProtocolError as exc:
            logger.warning("simulator closing a connection that broke the protocol: %s", exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.abort()

    def _deadline(self, opened: float, last_request: float, greeted: bool) -> float | None:
        limits = self.limits
        deadlines = []
        if limits.handshake_timeout is not None and not greeted:
            deadlines.append(opened + limits.handshake_timeout)
        if limits.idle_timeout is not None:
            deadlines.append(last_request + limits.idle_timeout)
        return min(deadlines, default=None)

    def _timed_out(self, greeted: bool) -> str:
        limits = self.limits
        if limits.handshake_timeout is not None and not greeted:
            return f"a connection that sent no InitConnect within {limits.handshake_timeout:g} s"
        return f"a connection idle for {limits.idle_timeout:g} s"

    # -- Link -------------------------------------------------------------------------------

    def encode(self, reply: Reply) -> bytes:
        frame = encode_frame(
            reply.proto_id,
            reply.serial,
            reply.body,
            fmt=reply.fmt,
            encrypt=partial(self._encrypt, reply.proto_id),
        )
        if reply.proto_id == ProtoId.GET_SHORT_INTEREST:
            self._short_interest_replies += 1
            every = self.handler.faults.corrupt_every
            if every and self._short_interest_replies % every == 0:
                corrupt = bytearray(frame)
                corrupt[_SHA1_OFFSET] ^= 0xFF
                return bytes(corrupt)
        return frame

    def write_now(self, messages: list[bytes]) -> bool:
        faults = self.handler.faults
        if faults.split_writes or faults.trickle:
            return False
        transport = self.writer.transport
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            return False  # the peer is behind: wait for it in write()
        self.writer.write(b"".join(messages))
        return True

    async def wait_writable(self) -> None:
        await super().wait_writable()
        await self.writer.drain()

    async def write(self, messages: list[bytes]) -> None:
        data = b"".join(messages)
        faults = self.handler.faults
        size = faults.split_writes or (1 if faults.trickle else None)
        if not size:
            self.writer.write(data)
            await self.writer.drain()
            return
        pause = faults.trickle or _SPLIT_PAUSE
        for offset in range(0, len(data), size):
            self.writer.write(data[offset : offset + size])
            await self.writer.drain()
            await asyncio.sleep(pause)

    def abort_transport(self) -> None:
        self.writer.transport.abort()

    async def close_transport(self) -> None:
        self.writer.close()

    # -- encryption -------------------------------------------------------------------------

    def _decrypt(self, proto_id: int, body: bytes) -> bytes:
        rsa = self.rsa
        assert rsa is not None
        if proto_id == ProtoId.INIT_CONNECT:
            try:
                plain = rsa.decrypt(body)
            except ProtocolError:
                # Perhaps a client without the key: the SHA-1 check tells plaintext from garbage,
                # and the handler refuses it politely.
                self.session.rsa_request = False
                return body
            self.session.rsa_request = True
            return plain
        return self._aes.decrypt(body) if self._aes is not None else body

    def _encrypt(self, proto_id: int, body: bytes) -> bytes:
        session = self.session
        if proto_id == ProtoId.INIT_CONNECT and session.rsa_reply:
            assert self.rsa is not None
            encrypted = self.rsa.encrypt(body)
            # Every frame after InitConnect's reply travels under the AES key it announced.
            key, session.aes_key = session.aes_key, None
            self._aes = AesCipher(key, iv=session.aes_iv) if key is not None else None
            return encrypted
        return self._aes.encrypt(body) if self._aes is not None else body
