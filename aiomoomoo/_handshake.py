"""Opening a connection: TCP connect, InitConnect, and what OpenD's reply sets up.

Every way this can fail is one `ConnectError` whose message says which stage failed and whose
cause is the underlying error; a protocol error in InitConnect's reply fails at once instead of
waiting out the connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from . import _messages
from ._connection import Connection, ConnectionInfo
from ._crypto import ClientEncryption
from ._errors import ConnectError, MoomooError, ServerError
from ._wire import DEFAULT_MAX_BODY_SIZE, ProtoId

__all__ = ["MAX_SERVER_KEEPALIVE", "open_connection"]

logger = logging.getLogger("aiomoomoo")

_MIN_SERVER_KEEPALIVE: Final = 1.0
#: Whatever interval OpenD advertises, a dead peer is noticed within 3.3 x 12 = 39.6 s (the
#: official client gives up after a fixed 33 s).
MAX_SERVER_KEEPALIVE: Final = 12.0


async def open_connection(
    host: str,
    port: int,
    *,
    timeout: float,
    client_id: str,
    keepalive_interval: float | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    encryption: ClientEncryption | None = None,
) -> Connection:
    """Connect, send InitConnect and start the keep-alive; raise `ConnectError`.

    ``timeout`` bounds TCP connect plus InitConnect. ``keepalive_interval`` overrides the
    interval OpenD advertises (which is capped at `MAX_SERVER_KEEPALIVE`). ``encryption``, a
    fresh `ClientEncryption` per connection, encrypts InitConnect with RSA and everything after
    with AES.
    """
    loop = asyncio.get_running_loop()
    address = f"{host}:{port}"
    connection = Connection(address, max_body_size=max_body_size, encryption=encryption)
    # Said with every InitConnect failure while encrypting: the usual cause is a key mismatch.
    hint = " (is OpenD configured with the same RSA private key?)" if encryption else ""
    stage = "accept the connection"
    body = _messages.init_connect_request(client_id, encrypted=encryption is not None)
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: connection, host, port)
            stage = "complete InitConnect"
            reply = await connection.request(
                ProtoId.INIT_CONNECT, body, decode=_messages.decode_init_connect
            )
        init = _messages.init_reply(reply)
    except TimeoutError:
        connection.close()
        why = hint if stage == "complete InitConnect" else ""
        raise ConnectError(
            f"OpenD at {address} did not {stage} within {timeout:g} s{why}"
        ) from None
    except ServerError as exc:
        connection.close()
        raise ConnectError(f"OpenD at {address} refused InitConnect: {exc}") from exc
    except MoomooError as exc:
        connection.close()
        raise ConnectError(f"OpenD at {address} broke off InitConnect: {exc}{hint}") from exc
    except OSError as exc:
        # After MoomooError: a lost connection is a ConnectionError, hence an OSError, too.
        connection.close()
        raise ConnectError(
            f"cannot connect to OpenD at {address}: {exc.strerror or exc}. Is OpenD running "
            "and logged in? Start it, or try `aiomoomoo short-interest --demo` for the "
            "built-in simulator"
        ) from exc
    except BaseException:
        connection.close()
        raise
    advertised = max(init.keepalive_interval, _MIN_SERVER_KEEPALIVE)
    connection.info = ConnectionInfo(
        conn_id=init.conn_id,
        server_version=init.server_version,
        login_user_id=init.login_user_id,
        keepalive_interval=keepalive_interval or min(advertised, MAX_SERVER_KEEPALIVE),
        encryption=(encryption.mode or "none") if encryption is not None else "none",
    )
    if connection.lost_error is not None:
        raise ConnectError(f"OpenD at {address} dropped the connection right after InitConnect")
    connection.start_keepalive()
    logger.debug("connected to OpenD %s, conn_id=%d", address, init.conn_id)
    return connection
