"""OpenD's body encryption, checked against pycryptodome, the official SDK's own crypto library.

RSA PKCS#1 v1.5 in 100-byte plaintext chunks for InitConnect; AES-CBC (PKCS#7, the same IV for
every message) or FTAES-ECB (zero padding plus a plain length trailer) for everything after.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from Crypto.Cipher import AES, PKCS1_v1_5
from Crypto.PublicKey import RSA
from Crypto.Util.Padding import pad
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aiomoomoo import ProtocolError
from aiomoomoo._crypto import AesCipher, ClientEncryption, RsaCipher, load_rsa_private_key
from aiomoomoo._messages import init_connect_aes_key
from aiomoomoo._wire import FrameDecoder, ProtoId, encode_frame

from ._fakes import accepted_init_connect

KEY = b"0123456789ABCDEF"
IV = b"fedcba9876543210"
#: Not a multiple of 16, so ECB pads it; readable, so a leak would be easy to spot.
SECRET_BODY = b"short interest of US.AAPL, secret plaintext"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def pem_of(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    password: bytes | None = None,
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def pycryptodome_key(key: rsa.RSAPrivateKey) -> RSA.RsaKey:
    return RSA.import_key(pem_of(key))


def assert_no_key_material(text: str, pem: bytes) -> None:
    """Neither the PEM armour nor any line of its base64 body appears in ``text``."""
    assert "-----BEGIN" not in text
    for line in pem.decode().splitlines():
        if line and not line.startswith("-----"):
            assert line not in text


def same_numbers(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


# -- RSA -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "chunks"), [(0, 0), (1, 1), (100, 1), (101, 2), (250, 3)], ids=lambda v: str(v)
)
def test_rsa_encrypts_100_byte_chunks_into_128_byte_chunks(
    private_key: rsa.RSAPrivateKey, size: int, chunks: int
) -> None:
    cipher = RsaCipher(private_key)
    plaintext = os.urandom(size)
    ciphertext = cipher.encrypt(plaintext)
    assert len(ciphertext) == 128 * chunks
    assert cipher.decrypt(ciphertext) == plaintext


def test_rsa_chunks_are_encrypted_one_by_one(private_key: rsa.RSAPrivateKey) -> None:
    # Each 128-byte chunk decrypts on its own to its 100-byte (or shorter) slice.
    cipher = RsaCipher(private_key)
    plaintext = bytes(range(250))
    ciphertext = cipher.encrypt(plaintext)
    pieces = [cipher.decrypt(ciphertext[i : i + 128]) for i in range(0, len(ciphertext), 128)]
    assert pieces == [plaintext[:100], plaintext[100:200], plaintext[200:]]


def test_rsa_matches_pycryptodome_both_ways(private_key: rsa.RSAPrivateKey) -> None:
    ours = RsaCipher(private_key)
    theirs = PKCS1_v1_5.new(pycryptodome_key(private_key))
    plaintext = bytes(range(256)) * 2  # 512 bytes: six chunks, the last one short
    # Ours encrypts, pycryptodome decrypts chunk by chunk, as the official SDK does.
    ciphertext = ours.encrypt(plaintext)
    sentinel = b"decryption failed"
    decrypted = b"".join(
        theirs.decrypt(ciphertext[i : i + 128], sentinel) for i in range(0, len(ciphertext), 128)
    )
    assert decrypted == plaintext
    # pycryptodome encrypts 100-byte chunks, ours decrypts.
    theirs_ciphertext = b"".join(
        theirs.encrypt(plaintext[i : i + 100]) for i in range(0, len(plaintext), 100)
    )
    assert len(theirs_ciphertext) == len(ciphertext) == 6 * 128
    assert ours.decrypt(theirs_ciphertext) == plaintext


@pytest.mark.parametrize("size", [1, 127, 129, 200])
def test_rsa_refuses_bodies_that_are_not_whole_chunks(
    private_key: rsa.RSAPrivateKey, size: int
) -> None:
    with pytest.raises(ProtocolError, match=f"RSA body of {size} bytes"):
        RsaCipher(private_key).decrypt(bytes(size))


def test_rsa_with_the_wrong_key_never_yields_the_plaintext(
    private_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    # OpenSSL before 3.2 reports the bad padding; 3.2 and later answer it with random bytes
    # ("implicit rejection"), which the SHA-1 check refuses (next test). Either way no plaintext.
    ciphertext = RsaCipher(private_key).encrypt(SECRET_BODY)
    outcome: bytes | ProtocolError
    try:
        outcome = RsaCipher(other_key).decrypt(ciphertext)
    except ProtocolError as exc:
        outcome = exc
    if isinstance(outcome, ProtocolError):
        assert "different keys" in str(outcome)
    else:
        assert outcome != SECRET_BODY


def test_an_initconnect_reply_under_the_wrong_key_is_a_protocol_error(
    private_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    reply = init_connect_reply(iv=IV.decode())
    frame = encode_frame(ProtoId.INIT_CONNECT, 7, reply, encrypt=RsaCipher(private_key).encrypt)
    encryption = ClientEncryption(other_key)
    with pytest.raises(ProtocolError):
        FrameDecoder(decrypt=encryption.decrypt).feed(frame)
    assert encryption.mode is None


# -- AES-CBC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "wire"), [(0, 16), (1, 16), (15, 16), (16, 32), (17, 32)])
def test_cbc_pads_with_pkcs7_adding_a_full_block_when_aligned(size: int, wire: int) -> None:
    cipher = AesCipher(KEY, iv=IV)
    assert cipher.mode == "cbc"
    plaintext = os.urandom(size)
    ciphertext = cipher.encrypt(plaintext)
    assert len(ciphertext) == wire
    # The padding is visible once decrypted without unpadding: n bytes of value n.
    raw = AES.new(KEY, AES.MODE_CBC, iv=IV).decrypt(ciphertext)
    n = wire - size
    assert raw == plaintext + bytes([n]) * n


def test_cbc_starts_every_message_from_the_same_iv() -> None:
    cipher = AesCipher(KEY, iv=IV)
    first = cipher.encrypt(SECRET_BODY)
    assert cipher.encrypt(b"something else in between") != first
    assert cipher.encrypt(SECRET_BODY) == first
    assert cipher.decrypt(first) == SECRET_BODY
    assert cipher.decrypt(first) == SECRET_BODY


@pytest.mark.parametrize("size", range(41))
def test_cbc_equals_pycryptodome_and_round_trips(size: int) -> None:
    cipher = AesCipher(KEY, iv=IV)
    plaintext = bytes(range(size))
    ciphertext = cipher.encrypt(plaintext)
    assert ciphertext == AES.new(KEY, AES.MODE_CBC, iv=IV).encrypt(pad(plaintext, 16))
    assert cipher.decrypt(ciphertext) == plaintext


@pytest.mark.parametrize("size", [0, 15, 17, 33])
def test_cbc_refuses_bodies_that_are_not_whole_blocks(size: int) -> None:
    with pytest.raises(ProtocolError, match=f"AES-CBC body of {size} bytes"):
        AesCipher(KEY, iv=IV).decrypt(bytes(size))


@pytest.mark.parametrize("last", [0, 17, 255])
def test_cbc_refuses_bad_padding(last: int) -> None:
    ciphertext = AES.new(KEY, AES.MODE_CBC, iv=IV).encrypt(bytes(15) + bytes([last]))
    with pytest.raises(ProtocolError, match="bad padding"):
        AesCipher(KEY, iv=IV).decrypt(ciphertext)


# -- FTAES-ECB -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "blocks"), [(0, 0), (1, 1), (15, 1), (16, 1), (17, 2), (32, 2), (40, 3)]
)
def test_ecb_zero_pads_and_appends_a_plain_length_trailer(size: int, blocks: int) -> None:
    cipher = AesCipher(KEY, iv=None)
    assert cipher.mode == "ecb"
    plaintext = bytes(range(1, size + 1))
    ciphertext = cipher.encrypt(plaintext)
    assert len(ciphertext) == 16 * blocks + 16
    assert ciphertext[-16:] == bytes(15) + bytes([size % 16])
    # Aligned plaintext gets no padding at all; otherwise zeros up to the block.
    raw = AES.new(KEY, AES.MODE_ECB).decrypt(ciphertext[:-16])
    assert raw == plaintext + bytes(16 * blocks - size)


@pytest.mark.parametrize("size", range(41))
def test_ecb_equals_pycryptodome_and_round_trips(size: int) -> None:
    cipher = AesCipher(KEY, iv=None)
    plaintext = bytes(range(100, 100 + size))
    padded = plaintext + bytes(-size % 16)
    ciphertext = cipher.encrypt(plaintext)
    expected = AES.new(KEY, AES.MODE_ECB).encrypt(padded) + bytes(15) + bytes([size % 16])
    assert ciphertext == expected
    assert cipher.decrypt(ciphertext) == plaintext


def test_ecb_round_trips_plaintext_that_ends_in_zeros() -> None:
    # Zero padding cannot be told from trailing zeros: only the trailer's length says.
    cipher = AesCipher(KEY, iv=None)
    for plaintext in (bytes(5), b"x" + bytes(20), bytes(32)):
        assert cipher.decrypt(cipher.encrypt(plaintext)) == plaintext


@pytest.mark.parametrize("size", [0, 15, 17, 40])
def test_ecb_refuses_bodies_that_are_not_whole_blocks(size: int) -> None:
    with pytest.raises(ProtocolError, match=f"AES-ECB body of {size} bytes"):
        AesCipher(KEY, iv=None).decrypt(bytes(size))


@pytest.mark.parametrize("remainder", [16, 17, 255])
def test_ecb_refuses_a_trailer_remainder_of_16_or_more(remainder: int) -> None:
    body = AES.new(KEY, AES.MODE_ECB).encrypt(bytes(16))
    with pytest.raises(ProtocolError, match=f"remainder of {remainder}"):
        AesCipher(KEY, iv=None).decrypt(body + bytes(15) + bytes([remainder]))


@pytest.mark.parametrize(
    ("key", "iv", "message"),
    [
        (b"short", None, "5-byte AES key"),
        (KEY + b"x", IV, "17-byte AES key"),
        (KEY, b"short iv", "8-byte AES IV"),
    ],
)
def test_aes_refuses_keys_and_ivs_of_the_wrong_size(
    key: bytes, iv: bytes | None, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        AesCipher(key, iv=iv)


def test_aes_accepts_24_and_32_byte_keys_like_pycryptodome() -> None:
    for key in (KEY + KEY[:8], KEY * 2):
        ciphertext = AesCipher(key, iv=IV).encrypt(SECRET_BODY)
        assert ciphertext == AES.new(key, AES.MODE_CBC, iv=IV).encrypt(pad(SECRET_BODY, 16))


# -- loading the key -------------------------------------------------------------------------


def test_load_accepts_a_path_a_str_path_and_pem_bytes(
    private_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    pem = pem_of(private_key)
    path = tmp_path / "opend.pem"
    path.write_bytes(pem)
    for source in (path, str(path), pem):
        loaded = load_rsa_private_key(source)
        assert loaded.key_size == 1024
        assert same_numbers(loaded, private_key)


@pytest.mark.parametrize(
    ("fmt", "armour"),
    [
        (serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----"),
        (serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN RSA PRIVATE KEY-----"),
    ],
    ids=["pkcs8", "pkcs1"],
)
def test_load_accepts_pkcs8_and_pkcs1_pem(
    private_key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat, armour: bytes
) -> None:
    pem = pem_of(private_key, fmt=fmt)
    assert pem.startswith(armour)
    assert same_numbers(load_rsa_private_key(pem), private_key)


def test_load_accepts_the_key_pycryptodome_writes_for_the_official_sdk(
    private_key: rsa.RSAPrivateKey,
) -> None:
    # What an OpenD user typically has: a PKCS#1 file as RSA.export_key() writes it.
    pem = pycryptodome_key(private_key).export_key(format="PEM", pkcs=1)
    assert same_numbers(load_rsa_private_key(pem), private_key)


def test_load_explains_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ValueError, match="cannot read RSA private key file") as info:
        load_rsa_private_key(missing)
    assert str(missing) in str(info.value)
    assert "No such file or directory" in str(info.value)
    with pytest.raises(ValueError, match="cannot read RSA private key file"):
        load_rsa_private_key(tmp_path)  # a directory


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a key at all",
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    ],
    ids=["empty", "text", "broken-pem"],
)
def test_load_explains_garbage(garbage: bytes) -> None:
    with pytest.raises(ValueError, match="it is not a PEM private key"):
        load_rsa_private_key(garbage)


def test_load_refuses_a_public_key_or_certificate_shaped_pem(
    private_key: rsa.RSAPrivateKey,
) -> None:
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="it is not a PEM private key") as info:
        load_rsa_private_key(public)
    assert_no_key_material(str(info.value), public)


@pytest.mark.parametrize(
    "fmt",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
    ids=["pkcs8", "pkcs1"],
)
def test_load_explains_a_password_protected_key(
    private_key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat, tmp_path: Path
) -> None:
    pem = pem_of(private_key, fmt=fmt, password=b"hunter2")
    path = tmp_path / "locked.pem"
    path.write_bytes(pem)
    for source in (pem, path):
        with pytest.raises(ValueError, match="it is password-protected") as info:
            load_rsa_private_key(source)
        assert_no_key_material(str(info.value), pem)
        assert "hunter2" not in str(info.value)


def test_load_refuses_a_2048_bit_key() -> None:
    pem = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ValueError, match="is a 2048-bit key; OpenD uses 1024-bit") as info:
        load_rsa_private_key(pem)
    assert_no_key_material(str(info.value), pem)


def test_load_refuses_an_ec_key(tmp_path: Path) -> None:
    pem = pem_of(ec.generate_private_key(ec.SECP256R1()))
    path = tmp_path / "ec.pem"
    path.write_bytes(pem)
    with pytest.raises(ValueError, match="is not an RSA key") as info:
        load_rsa_private_key(path)
    assert str(path) in str(info.value)
    assert_no_key_material(str(info.value), pem)


def test_load_refuses_a_key_type_cryptography_does_not_know() -> None:
    # A PKCS#8 key with an unknown algorithm id: cryptography's UnsupportedAlgorithm becomes
    # the same ValueError as any other key that is not RSA.
    # (An Ed25519 key with its OID 1.3.101.112 changed to 1.3.101.127.)
    der = bytes.fromhex("302e020100300506032b657f04220420") + bytes(range(32))
    pem = (
        b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END PRIVATE KEY-----\n"
    )
    # Recent cryptography raises UnsupportedAlgorithm (46 did not yet); older ones a ValueError as
    # for any unreadable key
    # (the crypto extra allows cryptography>=42), and the message can only say what it was told.
    try:
        serialization.load_pem_private_key(pem, password=None)
    except UnsupportedAlgorithm:
        expected = "is not an RSA key"
    except ValueError:
        expected = "it is not a PEM private key"
    with pytest.raises(ValueError, match=expected):
        load_rsa_private_key(pem)


def test_load_refuses_pem_text_in_a_str_without_echoing_it(
    private_key: rsa.RSAPrivateKey,
) -> None:
    # A str is a path; PEM text in one must not end up in a "cannot read file ..." message.
    pem = pem_of(private_key, fmt=serialization.PrivateFormat.TraditionalOpenSSL)
    with pytest.raises(ValueError, match="PEM text in a str") as info:
        load_rsa_private_key(pem.decode())
    assert_no_key_material(str(info.value), pem)
    assert "text.encode()" in str(info.value)


@pytest.mark.parametrize("bad", [1024, None, bytearray(b"pem"), ["key.pem"]])
def test_load_refuses_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="rsa_private_key must be PEM bytes or a file path"):
        load_rsa_private_key(bad)  # type: ignore[arg-type]


# -- the client's encryption state -----------------------------------------------------------


def init_connect_reply(*, iv: str | None) -> bytes:
    """An accepted InitConnect reply body naming ``KEY`` (and ``iv`` for CBC)."""
    return accepted_init_connect(KEY.decode(), iv)


@pytest.mark.parametrize(("iv", "mode"), [(IV, "aes-cbc"), (None, "aes-ecb")], ids=["cbc", "ecb"])
def test_client_uses_rsa_for_initconnect_and_the_installed_aes_key_after(
    private_key: rsa.RSAPrivateKey, iv: bytes | None, mode: str
) -> None:
    encryption = ClientEncryption(private_key)
    mode_before = encryption.mode
    assert mode_before is None
    # The request goes out under RSA: OpenD decrypts it with the same key.
    request = os.urandom(150)
    to_opend = encryption.encrypt(ProtoId.INIT_CONNECT, request)
    assert len(to_opend) == 256
    assert RsaCipher(private_key).decrypt(to_opend) == request
    reply = init_connect_reply(iv=iv.decode() if iv is not None else None)
    wire = RsaCipher(private_key).encrypt(reply)
    assert encryption.decrypt(ProtoId.INIT_CONNECT, wire) == reply
    # Decrypting the reply only decrypts it: reading the key is the message layer's job.
    mode_after_reply = encryption.mode
    assert mode_after_reply is None
    encryption.use_aes(KEY, iv)
    assert encryption.mode == mode
    aes = AesCipher(KEY, iv=iv)
    assert encryption.encrypt(ProtoId.GET_SHORT_INTEREST, SECRET_BODY) == aes.encrypt(SECRET_BODY)
    from_opend = aes.encrypt(SECRET_BODY)
    assert encryption.decrypt(ProtoId.GET_SHORT_INTEREST, from_opend) == SECRET_BODY
    # InitConnect stays RSA after the key is installed.
    assert encryption.decrypt(ProtoId.INIT_CONNECT, wire) == reply


def test_client_decodes_the_reply_and_the_next_frame_from_one_read(
    private_key: rsa.RSAPrivateKey,
) -> None:
    # A push right behind the InitConnect reply is encrypted with the key the reply names: the
    # key is installed between two frames of the same read, as the connection does.
    reply = init_connect_reply(iv=None)
    data = encode_frame(
        ProtoId.INIT_CONNECT, 1, reply, encrypt=RsaCipher(private_key).encrypt
    ) + encode_frame(ProtoId.NOTIFY, 2, SECRET_BODY, encrypt=AesCipher(KEY, iv=None).encrypt)
    assert data[16:36] == hashlib.sha1(reply).digest()  # the header hashes the plaintext

    encryption = ClientEncryption(private_key)
    decoder = FrameDecoder(decrypt=encryption.decrypt)
    decoder.receive(data)
    first = decoder.next_frame()
    assert first is not None
    assert (first.proto_id, first.body) == (ProtoId.INIT_CONNECT, reply)
    aes = init_connect_aes_key(first.body)
    assert aes == (KEY, None)
    encryption.use_aes(*aes)
    second = decoder.next_frame()
    assert second is not None
    assert (second.proto_id, second.body) == (ProtoId.NOTIFY, SECRET_BODY)
    assert decoder.next_frame() is None

    # Decoding the whole read before installing the key cannot work.
    with pytest.raises(ProtocolError, match="before InitConnect's reply"):
        FrameDecoder(decrypt=ClientEncryption(private_key).decrypt).feed(data)


def test_client_refuses_aes_frames_before_initconnect(private_key: rsa.RSAPrivateKey) -> None:
    encryption = ClientEncryption(private_key)
    with pytest.raises(ProtocolError, match="before InitConnect's reply"):
        encryption.decrypt(ProtoId.NOTIFY, bytes(32))
    with pytest.raises(ProtocolError, match="before InitConnect succeeded"):
        encryption.encrypt(ProtoId.KEEP_ALIVE, b"\x0a\x00")


def test_client_refuses_an_aes_key_or_iv_of_the_wrong_size(private_key: rsa.RSAPrivateKey) -> None:
    encryption = ClientEncryption(private_key)
    with pytest.raises(ProtocolError, match="5-byte AES key"):
        encryption.use_aes(b"short", None)
    with pytest.raises(ProtocolError, match="8-byte AES IV"):
        encryption.use_aes(KEY, b"short iv")
    assert encryption.mode is None


# -- nothing secret in reprs -----------------------------------------------------------------


def test_reprs_show_the_mode_and_never_a_key(private_key: rsa.RSAPrivateKey) -> None:
    pem = pem_of(private_key)
    rsa_cipher = RsaCipher(private_key)
    cbc = AesCipher(KEY, iv=IV)
    ecb = AesCipher(KEY, iv=None)
    encryption = ClientEncryption(private_key)
    before = repr(encryption)
    encryption.use_aes(KEY, IV)
    reprs = {
        repr(rsa_cipher): "<RsaCipher 1024-bit>",
        repr(cbc): "<AesCipher cbc 128-bit>",
        repr(ecb): "<AesCipher ecb 128-bit>",
        before: "<ClientEncryption awaiting InitConnect>",
        repr(encryption): "<ClientEncryption aes-cbc>",
    }
    for text, expected in reprs.items():
        assert text == expected
        assert_no_key_material(text, pem)
        for secret in (KEY, IV):
            assert secret.decode() not in text
            assert secret.hex() not in text
            assert repr(secret) not in text
