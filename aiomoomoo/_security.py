"""Security codes: ``"US.AAPL"`` and ``"HK.00700"`` to and from OpenD's (market, code) pair."""

from __future__ import annotations

import enum
import functools
from typing import Final, NamedTuple

__all__ = ["Market", "Security", "parse_code"]


class Market(enum.IntEnum):
    """The markets short interest covers, with OpenD's ``QotMarket`` numbers."""

    HK = 1
    US = 11

    @property
    def timezone(self) -> str:
        """The IANA timezone in which this market's trading days (and timestamps) are reckoned."""
        return _TIMEZONES[self]


_TIMEZONES: Final = {Market.HK: "Asia/Hong_Kong", Market.US: "America/New_York"}

# Prefixes OpenD knows but that short interest does not cover, so the error can say so precisely.
_OTHER_PREFIXES: Final = frozenset(
    {"HK_FUTURE", "SH", "SZ", "SG", "JP", "AU", "MY", "CA", "FX", "CC", "EC", "N/A"}
)
_MAX_SYMBOL_LENGTH: Final = 32


class Security(NamedTuple):
    """A parsed security code."""

    market: Market
    symbol: str

    @property
    def code(self) -> str:
        """The ``"<MARKET>.<symbol>"`` form."""
        return f"{self.market.name}.{self.symbol}"


def parse_code(code: object) -> Security:
    """Parse ``"US.<symbol>"`` or ``"HK.<symbol>"``; raise ``TypeError``/``ValueError`` otherwise.

    The symbol is passed to OpenD exactly as given (``"US.BRK.B"`` is market US, symbol
    ``"BRK.B"``), as the official SDK does; only the market prefix is checked.
    """
    if not isinstance(code, str):
        raise TypeError(
            f"code must be a str like 'US.AAPL' or 'HK.00700', got {type(code).__name__} {code!r}"
        )
    return _parse_str(code)


# Bots ask for the same few codes over and over; parsing is pure, so remember it.
@functools.lru_cache(maxsize=4096)
def _parse_str(code: str) -> Security:
    prefix, dot, symbol = code.partition(".")
    if not dot or not symbol:
        raise ValueError(
            f"code {code!r} is not '<MARKET>.<symbol>' (for example 'US.AAPL' or 'HK.00700')"
        )
    if prefix not in Market.__members__:
        if prefix in _OTHER_PREFIXES:
            raise ValueError(
                f"code {code!r}: short interest covers only HK and US securities, not {prefix}"
            )
        raise ValueError(f"code {code!r}: unknown market {prefix!r}; use 'US.' or 'HK.'")
    if len(symbol) > _MAX_SYMBOL_LENGTH or not symbol.isprintable() or symbol != symbol.strip():
        raise ValueError(
            f"code {code!r}: the symbol must be 1 to {_MAX_SYMBOL_LENGTH} printable characters "
            "without surrounding spaces"
        )
    return Security(Market[prefix], symbol)
