"""A lean OpenD stand-in for benchmarks: precomputed replies, so the client is what is measured.

It answers InitConnect (1001), KeepAlive (1004) and short interest (3249), nothing else. Every
3249 reply is the same 50-row US page (see :mod:`page`): only the 44-byte header, packed with one
``struct`` call around the precomputed SHA-1, changes per request. With ``walk_pages`` set, the
n-th request on a connection gets page key ``n`` instead (a fixed-width key, so the SHA-1 is a
copied hash state plus ten bytes) and request ``walk_pages`` gets ``"-1"``, for long walks.

It runs in its own process (:func:`start`), so its CPU never counts against the client's.
Standalone, for profiling a client by hand::

    python bench/lean_server.py --port 11111 [--walk 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import multiprocessing
import multiprocessing.connection
import struct
import sys
import time
from pathlib import Path
from typing import Final

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from page import LAST_PAGE_KEY, KeyedPage, page_body

from aiomoomoo._proto import InitConnect_pb2, KeepAlive_pb2
from aiomoomoo._wire import FrameDecoder, ProtoId, encode_frame

__all__ = ["LeanServer", "ServerProcess", "start"]

# Same layout as aiomoomoo._wire's header: magic, proto id, format, version, serial, body length,
# SHA-1, 8 reserved bytes.
_HEADER: Final = struct.Struct("<2sIBBII20s8s")
_RESERVED: Final = bytes(8)
_CONSTANT_KEY: Final = "1700000000"


class LeanServer:
    """The precomputed replies and the counters, shared by every connection."""

    def __init__(self, walk_pages: int | None = None) -> None:
        if walk_pages is not None and walk_pages < 1:
            raise ValueError(f"walk_pages must be at least 1, got {walk_pages!r}")
        self.walk_pages = walk_pages
        self.page = page_body(_CONSTANT_KEY)
        self.page_digest = hashlib.sha1(self.page).digest()
        self.last_page = page_body(LAST_PAGE_KEY)
        self.last_page_digest = hashlib.sha1(self.last_page).digest()
        self.keyed = KeyedPage()
        self.conn_ids = itertools.count(7_000_000_000_000_000_001)
        self.pages_served = 0
        self.connections = 0

    def protocol(self) -> _LeanProtocol:
        return _LeanProtocol(self)

    def page_for(self, n: int) -> tuple[bytes, bytes]:
        """Body and SHA-1 of the reply to a connection's n-th (from 1) short-interest request."""
        walk = self.walk_pages
        if walk is None:
            return self.page, self.page_digest
        if n >= walk:
            return self.last_page, self.last_page_digest
        return self.keyed.body_and_digest(n)

    def init_connect(self, serial: int) -> bytes:
        self.connections += 1
        response = InitConnect_pb2.Response(retType=0)
        s2c = response.s2c
        s2c.serverVer = 1011
        s2c.loginUserID = 10_000_000
        s2c.connID = next(self.conn_ids)
        s2c.connAESKey = f"{s2c.connID & 0xFFFFFFFFFFFFFFFF:016X}"
        s2c.keepAliveInterval = 10
        return encode_frame(ProtoId.INIT_CONNECT, serial, response.SerializeToString())


class _LeanProtocol(asyncio.Protocol):
    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.decoder = FrameDecoder()
        self.requests = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        server = self.server
        out: list[bytes] = []
        for frame in self.decoder.feed(data):
            proto_id = frame.proto_id
            if proto_id == ProtoId.GET_SHORT_INTEREST:
                self.requests += 1
                server.pages_served += 1
                body, digest = server.page_for(self.requests)
                out.append(
                    _HEADER.pack(b"FT", proto_id, 0, 0, frame.serial, len(body), digest, _RESERVED)
                )
                out.append(body)
            elif proto_id == ProtoId.KEEP_ALIVE:
                reply = KeepAlive_pb2.Response(retType=0)
                reply.s2c.time = int(time.time())
                out.append(encode_frame(proto_id, frame.serial, reply.SerializeToString()))
            elif proto_id == ProtoId.INIT_CONNECT:
                out.append(server.init_connect(frame.serial))
            else:
                # Never an empty body: the official client would sit on it (protocol notes §1).
                reply = KeepAlive_pb2.Response(retType=-1, retMsg=f"proto {proto_id} not served")
                out.append(encode_frame(proto_id, frame.serial, reply.SerializeToString()))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def _serve(
    host: str,
    port: int,
    walk_pages: int | None,
    control: multiprocessing.connection.Connection | None,
) -> None:
    loop = asyncio.get_running_loop()
    server = LeanServer(walk_pages)
    listener = await loop.create_server(server.protocol, host, port)
    bound = listener.sockets[0].getsockname()[1]
    if control is None:
        print(f"lean OpenD listening on {host}:{bound} (walk_pages={walk_pages})", flush=True)
        await listener.serve_forever()
        return
    stop = loop.create_future()

    def on_command() -> None:
        try:
            command = control.recv()
        except EOFError:
            command = "stop"
        if command == "stats":
            control.send({"pages": server.pages_served, "cpu": time.process_time()})
        elif not stop.done():
            stop.set_result(None)

    loop.add_reader(control.fileno(), on_command)
    control.send(bound)
    await stop
    listener.close()


def _main_in_process(
    host: str, walk_pages: int | None, control: multiprocessing.connection.Connection
) -> None:
    asyncio.run(_serve(host, 0, walk_pages, control))


class ServerProcess:
    """A lean server running in a child process; ``port`` is where it listens."""

    def __init__(self, walk_pages: int | None = None, host: str = "127.0.0.1") -> None:
        context = multiprocessing.get_context("spawn")
        self._control, child = context.Pipe()
        self.host = host
        self.process = context.Process(
            target=_main_in_process, args=(host, walk_pages, child), name="lean-opend", daemon=True
        )
        self.process.start()
        child.close()
        if not self._control.poll(60):
            self.process.kill()
            raise RuntimeError("the lean server did not start within 60 s")
        self.port: int = self._control.recv()

    def stats(self) -> dict[str, float]:
        """Pages served so far and the server process's CPU seconds."""
        self._control.send("stats")
        return self._control.recv()  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._control.send("stop")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self._control.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(walk_pages: int | None = None) -> ServerProcess:
    """Start a lean server in a child process."""
    return ServerProcess(walk_pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11111)
    parser.add_argument(
        "--walk",
        type=int,
        default=None,
        metavar="N",
        help="hand out page keys, and '-1' on the N-th request of a connection",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.walk, None))


if __name__ == "__main__":
    main()
