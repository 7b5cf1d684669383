"""aiomoomoo: an asyncio client for the moomoo / Futu OpenD gateway."""

import logging
from importlib.metadata import PackageNotFoundError, version

from ._blocking import BlockingClient
from ._client import Client, GatewayEvent, GlobalState, ShortInterestPage
from ._connection import ConnectionInfo
from ._errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    FetchManyError,
    MoomooError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    StoreBusyError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    UnknownSecurityError,
)
from ._frames import HK_COLUMNS, US_COLUMNS, trading_dates
from ._many import Progress, SymbolResult
from ._quota import SlidingWindowLimiter
from ._rate_limit import RateLimit, RequestLimiter
from ._security import Market, Security
from .store import ShortInterestStore, SyncProgress, SyncReport, next_due

try:
    __version__ = version("aiomoomoo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    # The client
    "Client",
    "BlockingClient",
    "ShortInterestPage",
    "GatewayEvent",
    "ConnectionInfo",
    "GlobalState",
    # Many symbols
    "SymbolResult",
    "Progress",
    # A local dataset
    "ShortInterestStore",
    "SyncReport",
    "SyncProgress",
    "next_due",
    # The quota
    "SlidingWindowLimiter",
    "RequestLimiter",
    "RateLimit",
    # Errors
    "MoomooError",
    "ConnectionLostError",
    "ConnectError",
    "ClientClosedError",
    "RequestTimeoutError",
    "ProtocolError",
    "ServerError",
    "RateLimitError",
    "UnknownSecurityError",
    "FetchManyError",
    "StoreBusyError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    # Values
    "Market",
    "Security",
    "US_COLUMNS",
    "HK_COLUMNS",
    "trading_dates",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
