"""How a connection takes the frames of one read: one at a time, on a fake transport.

InitConnect's reply names the AES key of every later frame, and OpenD may send the next frame in
the same TCP segment. The connection takes frames one at a time and installs the key when it
dispatches the reply, so the frame behind it in the same read decrypts; decoding the whole read
first, then installing the key, would fail it. For the same reason a reply that arrives whole
and intact reaches its request even when a broken frame follows it in the read.
"""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aiomoomoo import ProtocolError
from aiomoomoo._connection import Connection, ConnectionInfo, State
from aiomoomoo._crypto import AesCipher, ClientEncryption, RsaCipher
from aiomoomoo._messages import (
    GatewayEvent,
    decode_init_connect,
    decode_keepalive,
    init_connect_request,
    init_reply,
    parse_notify,
)
from aiomoomoo._proto import InitConnect_pb2, KeepAlive_pb2, Notify_pb2
from aiomoomoo._wire import Frame, FrameDecoder, ProtoId, encode_frame

from ._fakes import FakeTransport, accepted_init_connect, attach

pytestmark = pytest.mark.anyio

KEY = "0123456789ABCDEF"
IV = "fedcba9876543210"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def gateway_event() -> bytes:
    push = Notify_pb2.Response(retType=0)
    push.s2c.type = 1
    push.s2c.event.eventType = 1
    push.s2c.event.desc = "gateway ready"
    return push.SerializeToString()


async def start_init_connect(
    private_key: rsa.RSAPrivateKey,
) -> tuple[Connection, FakeTransport, asyncio.Task[InitConnect_pb2.Response], int, list[Frame]]:
    """A connection that sent InitConnect; the serial it used and the pushes it will get."""
    encryption = ClientEncryption(private_key)
    connection = Connection("test:1", max_body_size=1 << 20, encryption=encryption)
    transport = attach(connection)
    pushes: list[Frame] = []
    connection.on_push = pushes.append
    body = init_connect_request("test", encrypted=True)
    task = asyncio.create_task(
        connection.request(ProtoId.INIT_CONNECT, body, decode=decode_init_connect)
    )
    for _ in range(3):
        await asyncio.sleep(0)
    rsa_cipher = RsaCipher(private_key)
    [request] = FrameDecoder(decrypt=lambda _, wire: rsa_cipher.decrypt(wire)).feed(
        bytes(transport.sent)
    )
    assert (request.proto_id, request.body) == (ProtoId.INIT_CONNECT, body)
    return connection, transport, task, request.serial, pushes


@pytest.mark.parametrize(("iv", "mode"), [(IV, "aes-cbc"), (None, "aes-ecb")], ids=["cbc", "ecb"])
async def test_initconnect_reply_and_an_aes_frame_in_one_read_both_decode(
    private_key: rsa.RSAPrivateKey, iv: str | None, mode: str
) -> None:
    connection, transport, task, serial, pushes = await start_init_connect(private_key)
    aes = AesCipher(KEY.encode(), iv=iv.encode() if iv is not None else None)
    one_read = encode_frame(
        ProtoId.INIT_CONNECT,
        serial,
        accepted_init_connect(KEY, iv),
        encrypt=RsaCipher(private_key).encrypt,
    ) + encode_frame(ProtoId.NOTIFY, 0, gateway_event(), encrypt=aes.encrypt)

    connection.data_received(one_read)

    assert connection.lost_error is None
    assert not transport.aborted
    assert init_reply(await task).conn_id == 42
    assert [parse_notify(push.body) for push in pushes] == [
        GatewayEvent(1, "GtwEvent", "gateway ready")
    ]
    assert connection._encryption is not None
    assert connection._encryption.mode == mode
    # Everything after InitConnect leaves under the same key.
    transport.sent.clear()
    connection.send_keepalive()
    [keepalive] = FrameDecoder(decrypt=lambda _, wire: aes.decrypt(wire)).feed(
        bytes(transport.sent)
    )
    assert keepalive.proto_id == ProtoId.KEEP_ALIVE


async def test_a_refused_initconnect_installs_no_key_and_an_aes_frame_behind_it_breaks(
    private_key: rsa.RSAPrivateKey,
) -> None:
    connection, transport, task, serial, pushes = await start_init_connect(private_key)
    refused = InitConnect_pb2.Response(retType=-1, retMsg="refused").SerializeToString()
    aes = AesCipher(KEY.encode(), iv=None)
    one_read = encode_frame(
        ProtoId.INIT_CONNECT, serial, refused, encrypt=RsaCipher(private_key).encrypt
    ) + encode_frame(ProtoId.NOTIFY, 0, gateway_event(), encrypt=aes.encrypt)

    connection.data_received(one_read)

    # The refusal itself reached the request; the frame behind it had no key to decrypt with.
    assert (await task).retMsg == "refused"
    assert pushes == []
    assert connection.state is State.LOST
    assert transport.aborted
    assert isinstance(connection.lost_error, ProtocolError)
    assert "before InitConnect's reply" in str(connection.lost_error)
    assert connection._encryption is not None
    assert connection._encryption.mode is None


async def test_a_reply_before_a_broken_frame_in_the_same_read_reaches_its_request() -> None:
    connection = Connection("test:1", max_body_size=1 << 20)
    transport = attach(connection)
    connection.info = ConnectionInfo(1, 1011, 1, keepalive_interval=10.0)
    tasks = [
        asyncio.create_task(connection.request(ProtoId.KEEP_ALIVE, b"", decode=decode_keepalive))
        for _ in range(2)
    ]
    for _ in range(3):
        await asyncio.sleep(0)
    first, second = (frame.serial for frame in FrameDecoder().feed(bytes(transport.sent)))
    reply = KeepAlive_pb2.Response(retType=0)
    reply.s2c.time = 7
    body = reply.SerializeToString()
    broken = bytearray(encode_frame(ProtoId.KEEP_ALIVE, second, body))
    broken[-1] ^= 0xFF

    connection.data_received(encode_frame(ProtoId.KEEP_ALIVE, first, body) + broken)

    assert (await tasks[0]).s2c.time == 7
    with pytest.raises(
        ProtocolError, match=f"SHA-1 mismatch in frame for proto 1004 serial {second}"
    ):
        await tasks[1]
    assert connection.state is State.LOST
    assert transport.aborted
