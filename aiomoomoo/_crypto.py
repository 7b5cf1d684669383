"""OpenD's body encryption: RSA for InitConnect, then AES with the per-connection key.

- InitConnect bodies are RSA PKCS#1 v1.5 encrypted in 100-byte plaintext chunks, each giving one
  128-byte ciphertext chunk (OpenD uses 1024-bit keys); the reply is decrypted 128 bytes at a time.
- Every later body uses AES-128 with the ``connAESKey`` OpenD sent: CBC with PKCS#7 padding and a
  fresh cipher from the same IV for every message when OpenD sent ``aesCBCiv``; otherwise OpenD's
  "FTAES ECB": zero padding to the block size plus a 16-byte plain trailer whose last byte is the
  plaintext length modulo 16.

The frame header's SHA-1 is always over the plaintext; `aiomoomoo._wire` applies these as
body transforms. Needs the ``cryptography`` package (``pip install aiomoomoo[crypto]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ._errors import ProtocolError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["AesCipher", "ClientEncryption", "RsaCipher", "load_rsa_private_key"]

_RSA_KEY_BITS: Final = 1024
_RSA_PLAIN_CHUNK: Final = 100
_RSA_CIPHER_CHUNK: Final = _RSA_KEY_BITS // 8
_BLOCK: Final = 16
_INIT_CONNECT: Final = 1001

AesMode = Literal["cbc", "ecb"]


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ImportError(
            "encrypted OpenD connections need the 'cryptography' package: "
            "pip install 'aiomoomoo[crypto]'"
        ) from None


def load_rsa_private_key(key: str | os.PathLike[str] | bytes) -> RSAPrivateKey:
    """Load the 1024-bit RSA private key OpenD is configured with: PEM bytes, or a file path.

    Raises ``ValueError`` for a key that cannot be read or is not a 1024-bit RSA key; the message
    never contains the key material.
    """
    _require_cryptography()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    if isinstance(key, bytes):
        pem, origin = key, "the rsa_private_key bytes"
    elif isinstance(key, str) and "-----BEGIN" in key:
        # Taken as a path it would be echoed in the "cannot read" message: the key, in a log.
        raise ValueError(
            "rsa_private_key is PEM text in a str, where a str means a file path; "
            "pass the PEM as bytes (text.encode()) or the key file's path"
        )
    elif isinstance(key, str | os.PathLike):
        path = Path(key)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"cannot read RSA private key file {str(path)!r}: {exc.strerror}"
            ) from None
        origin = f"RSA private key file {str(path)!r}"
    else:
        raise TypeError(
            f"rsa_private_key must be PEM bytes or a file path, got {type(key).__name__}"
        )
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = (
            "it is password-protected"
            if "password" in str(exc).lower()
            else "it is not a PEM private key"
        )
        raise ValueError(f"cannot load {origin}: {reason}") from None
    except UnsupportedAlgorithm:
        raise ValueError(f"{origin} is not an RSA key") from None
    if not isinstance(private, RSAPrivateKey):
        raise ValueError(f"{origin} is not an RSA key")
    if private.key_size != _RSA_KEY_BITS:
        raise ValueError(
            f"{origin} is a {private.key_size}-bit key; OpenD uses {_RSA_KEY_BITS}-bit RSA keys"
        )
    return private


class RsaCipher:
    """InitConnect's RSA layer, for either side of the connection."""

    __slots__ = ("_private",)

    def __init__(self, private_key: RSAPrivateKey) -> None:
        self._private = private_key

    def __repr__(self) -> str:
        return f"<RsaCipher {self._private.key_size}-bit>"

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt with the public half, 100 plaintext bytes per 128-byte chunk."""
        from cryptography.hazmat.primitives.asymmetric import padding

        public = self._private.public_key()
        return b"".join(
            public.encrypt(plaintext[i : i + _RSA_PLAIN_CHUNK], padding.PKCS1v15())
            for i in range(0, len(plaintext), _RSA_PLAIN_CHUNK)
        )

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt 128-byte chunks with the private key; raise ProtocolError if it fails.

        A body of the wrong length always fails here. A wrong key may not: OpenSSL 3.2 and later
        answer a bad PKCS#1 v1.5 block with random bytes (implicit rejection) instead of an
        error, and then the frame header's SHA-1 check is what refuses the body.
        """
        from cryptography.hazmat.primitives.asymmetric import padding

        if len(ciphertext) % _RSA_CIPHER_CHUNK:
            raise ProtocolError(
                f"RSA body of {len(ciphertext)} bytes is not whole {_RSA_CIPHER_CHUNK}-byte chunks"
            )
        try:
            return b"".join(
                self._private.decrypt(ciphertext[i : i + _RSA_CIPHER_CHUNK], padding.PKCS1v15())
                for i in range(0, len(ciphertext), _RSA_CIPHER_CHUNK)
            )
        except ValueError:
            raise ProtocolError(
                "cannot RSA-decrypt the InitConnect body: the two sides use different keys"
            ) from None


class AesCipher:
    """The AES layer of one connection, in OpenD's CBC or FTAES-ECB flavour."""

    __slots__ = ("_ecb", "_iv", "_key", "mode")

    def __init__(self, key: bytes, *, iv: bytes | None) -> None:
        _require_cryptography()
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(key) not in (16, 24, 32):
            raise ProtocolError(f"OpenD sent a {len(key)}-byte AES key; expected 16")
        if iv is not None and len(iv) != _BLOCK:
            raise ProtocolError(f"OpenD sent a {len(iv)}-byte AES IV; expected {_BLOCK}")
        self._key = key
        self._iv = iv
        self.mode: AesMode = "cbc" if iv is not None else "ecb"
        self._ecb = Cipher(algorithms.AES(key), modes.ECB())

    def __repr__(self) -> str:
        return f"<AesCipher {self.mode} {len(self._key) * 8}-bit>"

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one message body."""
        if self._iv is not None:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            pad = _BLOCK - len(plaintext) % _BLOCK
            encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
            return encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()
        remainder = len(plaintext) % _BLOCK
        padded = plaintext + bytes(_BLOCK - remainder) if remainder else plaintext
        encryptor = self._ecb.encryptor()
        body = encryptor.update(padded) + encryptor.finalize()
        return body + bytes(_BLOCK - 1) + bytes([remainder])

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt one message body; raise ProtocolError for one that cannot be ours."""
        if self._iv is not None:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            if not ciphertext or len(ciphertext) % _BLOCK:
                raise ProtocolError(f"AES-CBC body of {len(ciphertext)} bytes is not whole blocks")
            decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
            plain = decryptor.update(ciphertext) + decryptor.finalize()
            pad = plain[-1]
            if not 1 <= pad <= _BLOCK:
                raise ProtocolError("AES-CBC body has bad padding: wrong key or IV")
            return plain[:-pad]
        if len(ciphertext) < _BLOCK or len(ciphertext) % _BLOCK:
            raise ProtocolError(f"AES-ECB body of {len(ciphertext)} bytes is not whole blocks")
        body, trailer = ciphertext[:-_BLOCK], ciphertext[-_BLOCK:]
        remainder = trailer[-1]
        if remainder >= _BLOCK:
            raise ProtocolError(f"AES-ECB trailer names a remainder of {remainder}")
        decryptor = self._ecb.decryptor()
        plain = decryptor.update(body) + decryptor.finalize()
        return plain[: len(plain) - (_BLOCK - remainder)] if remainder else plain


class ClientEncryption:
    """The encryption state of one client connection.

    InitConnect travels under RSA; its reply names the AES key (and, for CBC, the IV) of every
    later frame. Reading that reply is the message layer's job: the connection takes frames one
    at a time and calls `use_aes` before it takes the frame after the reply, so a frame that
    arrives in the same read is already decrypted with the right key.
    """

    __slots__ = ("_aes", "_rsa")

    def __init__(self, private_key: RSAPrivateKey) -> None:
        self._rsa = RsaCipher(private_key)
        self._aes: AesCipher | None = None

    def __repr__(self) -> str:
        return f"<ClientEncryption {self.mode or 'awaiting InitConnect'}>"

    @property
    def mode(self) -> str | None:
        """``"aes-cbc"`` or ``"aes-ecb"`` once the AES key is installed, else None."""
        return f"aes-{self._aes.mode}" if self._aes is not None else None

    def use_aes(self, key: bytes, iv: bytes | None) -> None:
        """Encrypt and decrypt every later non-InitConnect body with AES under ``key``.

        ``iv`` is the CBC IV OpenD sent, or None for its FTAES-ECB flavour. A key or IV of the
        wrong size raises `ProtocolError`: OpenD never sends one.
        """
        self._aes = AesCipher(key, iv=iv)

    def encrypt(self, proto_id: int, body: bytes) -> bytes:
        """Encrypt a request body for the wire."""
        if proto_id == _INIT_CONNECT:
            return self._rsa.encrypt(body)
        if self._aes is None:
            raise ProtocolError(f"cannot encrypt proto {proto_id} before InitConnect succeeded")
        return self._aes.encrypt(body)

    def decrypt(self, proto_id: int, body: bytes) -> bytes:
        """Decrypt a frame body from the wire (the `FrameDecoder` hook)."""
        if proto_id == _INIT_CONNECT:
            return self._rsa.decrypt(body)
        if self._aes is None:
            raise ProtocolError(f"encrypted proto {proto_id} arrived before InitConnect's reply")
        return self._aes.decrypt(body)
