"""Security codes: what parses, what is refused and how the refusal reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomoomoo import Market
from aiomoomoo._security import Security, parse_code


@pytest.mark.parametrize(
    ("code", "market", "symbol"),
    [
        ("US.AAPL", Market.US, "AAPL"),
        ("HK.00700", Market.HK, "00700"),
        # Only the first dot separates the market, as in the official SDK.
        ("US.BRK.B", Market.US, "BRK.B"),
        ("US.aapl", Market.US, "aapl"),
        ("HK.1", Market.HK, "1"),
        ("US." + "X" * 32, Market.US, "X" * 32),
    ],
)
def test_parses_us_and_hk_codes(code: str, market: Market, symbol: str) -> None:
    security = parse_code(code)
    assert security == Security(market, symbol)
    assert security.market is market
    assert security.code == code


def test_markets_carry_opends_numbers_and_timezones() -> None:
    assert int(Market.HK) == 1
    assert int(Market.US) == 11
    assert Market.HK.timezone == "Asia/Hong_Kong"
    assert Market.US.timezone == "America/New_York"
    assert [m.name for m in Market] == ["HK", "US"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (b"US.AAPL", r"code must be a str like 'US\.AAPL' or 'HK\.00700', got bytes b'US\.AAPL'"),
        (None, "got NoneType None"),
        (700, "got int 700"),
        (("US", "AAPL"), r"got tuple \('US', 'AAPL'\)"),
    ],
)
def test_non_strings_are_a_type_error_naming_the_value(code: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        parse_code(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "SH.600000",
            r"code 'SH\.600000': short interest covers only HK and US securities, not SH",
        ),
        ("SZ.000001", "not SZ"),
        ("HK_FUTURE.HSImain", "only HK and US securities, not HK_FUTURE"),
        ("SG.D05", "not SG"),
        ("JP.7203", "not JP"),
        ("CC.BTC", "not CC"),
    ],
)
def test_other_opend_markets_say_hk_and_us_only(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_code(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AAPL", r"code 'AAPL' is not '<MARKET>\.<symbol>'"),
        ("US.", r"code 'US\.' is not '<MARKET>\.<symbol>'"),
        ("", r"code '' is not '<MARKET>\.<symbol>'"),
        (".AAPL", r"code '\.AAPL': unknown market ''; use 'US\.' or 'HK\.'"),
        ("us.AAPL", r"code 'us\.AAPL': unknown market 'us'"),
        ("NASDAQ.AAPL", "unknown market 'NASDAQ'"),
        ("US.AAPL ", "the symbol must be 1 to 32 printable characters without surrounding spaces"),
        ("US. AAPL", "without surrounding spaces"),
        ("US.AA\nPL", "printable characters"),
        ("US." + "X" * 33, "1 to 32 printable characters"),
    ],
)
def test_malformed_codes_are_a_value_error_naming_the_value(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_code(code)


@given(st.sampled_from(["US", "HK"]), st.text(min_size=1, max_size=32))
def test_any_printable_trimmed_symbol_round_trips(prefix: str, symbol: str) -> None:
    code = f"{prefix}.{symbol}"
    if symbol.isprintable() and symbol == symbol.strip():
        assert parse_code(code).code == code
    else:
        with pytest.raises(ValueError, match="printable characters"):
            parse_code(code)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_naming_itself(code: str) -> None:
    if code.startswith(("US.", "HK.")) and len(code) > 3:
        symbol = code[3:]
        if symbol.isprintable() and symbol == symbol.strip() and len(symbol) <= 32:
            assert parse_code(code).code == code
            return
    with pytest.raises(ValueError, match="code ") as raised:
        parse_code(code)
    assert repr(code) in str(raised.value)
