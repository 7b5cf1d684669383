"""The command line's pieces without sockets: escaping, formats, the column order, the parquet
hint, and the terminal view's tables (rich, narrow terminals, rich missing)."""

from __future__ import annotations

import importlib.abc
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS, US_COLUMNS
from aiomoomoo.cli._output import (
    check_writable,
    escape,
    format_for,
    in_column_order,
    parquet_problem,
)
from aiomoomoo.cli._terminal import RICH_HINT, emit_frame, market_tables, show_frame

HOSTILE = "unknown stock\x1b]0;owned\x07\x1b[2J\r\n all symbols fetched OK\u202eKO\x9b31m"


# -- escaping -------------------------------------------------------------------------------


def test_escape_makes_every_control_character_visible() -> None:
    escaped = escape(HOSTILE)
    assert escaped == (
        "unknown stock\\x1b]0;owned\\x07\\x1b[2J\\r\\n all symbols fetched OK\\u202eKO\\x9b31m"
    )
    assert escaped.isprintable()


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x08", "\t", "\x7f", "\x85", "\u200e", "\u2028", "\u2029", "\u2066", "\ufeff"],
)
def test_escape_covers_c0_c1_bidi_and_separators(char: str) -> None:
    assert escape(f"a{char}b").isprintable()
    assert escape(f"a{char}b") != f"a{char}b"


def test_escape_leaves_printable_text_alone() -> None:
    chinese = "\u9891\u7387\u592a\u9ad8\uff0c\u8bf7\u6c42\u5931\u8d25"  # OpenD's wording
    for text in ("OpenD refused proto 3249: unknown stock US.NOPE", chinese, "a\\x1b"):
        assert escape(text) == text
    assert escape(3249) == "3249"


# -- formats and files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "output", "expected"),
    [
        (None, None, "table"),
        (None, "aapl.json", "json"),
        (None, "aapl.CSV", "csv"),
        (None, "dir.v2/aapl.parquet", "parquet"),
        (None, "aapl.pq", "parquet"),
        (None, "aapl.txt", "table"),
        ("csv", "aapl.json", "csv"),
        ("json", None, "json"),
    ],
)
def test_the_format_comes_from_the_extension_unless_given(
    fmt: str | None, output: str | None, expected: str
) -> None:
    assert format_for(fmt, Path(output) if output else None) == expected


@pytest.mark.parametrize("output", ["aapl", "aapl.xlsx", "aapl.json.gz"])
def test_an_extension_that_names_no_format_is_refused(output: str) -> None:
    with pytest.raises(ValueError, match=rf"cannot tell the format of '{output}'.*add --format"):
        format_for(None, Path(output))


def test_check_writable_leaves_no_trace_and_refuses_what_cannot_be_written(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.csv"
    check_writable(fresh)
    assert not fresh.exists()
    kept = tmp_path / "kept.csv"
    kept.write_text("old\n")
    check_writable(kept)
    assert kept.read_text() == "old\n"
    with pytest.raises(FileNotFoundError):
        check_writable(tmp_path / "missing" / "x.csv")
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path)


# -- the terminal view ----------------------------------------------------------------------


def mixed_frame() -> pd.DataFrame:
    rows = []
    for code, count in (("US.AAPL", 7), ("HK.00700", 2), ("US.TSLA", 1)):
        for day in range(count):
            row: dict[str, object] = {
                "code": code,
                "timestamp": 1_700_000_000 - day * 86400,
                "timestamp_str": f"2026-01-{20 - day:02d}",
                "close_price": 10.5,
                "last_close_price": 10.25,
            }
            if code.startswith("US."):
                row |= {"shares_short": 1_234_567, "short_percent": 0.5, "days_to_cover": 1.5}
            else:
                row |= {"aggregated_short": 42, "aggregated_short_ratio": 0.25}
            rows.append(row)
    return pd.DataFrame(rows).astype({"shares_short": "Int64", "aggregated_short": "Int64"})


def test_each_market_gets_its_own_table_with_its_own_columns() -> None:
    us, hk = market_tables(mixed_frame(), newest=5)
    assert us.title == "US short interest"
    assert us.columns == [
        "code",
        "timestamp_str",
        "shares_short",
        "short_percent",
        "avg_daily_share_volume",
        "days_to_cover",
        "close_price",
        "last_close_price",
    ]
    assert hk.columns == ["code", *HK_COLUMNS[1:]]
    assert len(us.rows) == 5 + 1
    assert us.sections == [0, 5]
    assert [row[0] for row in us.rows] == ["US.AAPL", "", "", "", "", "US.TSLA"]
    assert us.rows[0][1:4] == ["2026-01-20", "1,234,567", "0.5"]
    assert us.rows[0][4] == ""  # a missing value is blank, not <NA> or NaN
    assert us.summaries == [
        "US.AAPL: 7 rows, 2026-01-14 to 2026-01-20, newest 5 shown",
        "US.TSLA: 1 row, 2026-01-20 to 2026-01-20",
    ]
    assert hk.summaries == ["HK.00700: 2 rows, 2026-01-19 to 2026-01-20"]
    assert len(market_tables(mixed_frame(), newest=None)[0].rows) == 8


def console(out: io.StringIO, width: int = 100) -> object:
    from rich.console import Console

    return Console(file=out, width=width, highlight=False, emoji=False, markup=False)


def test_the_terminal_view_escapes_cells_and_hints_at_the_rest() -> None:
    pytest.importorskip("rich")
    frame = mixed_frame()
    frame.loc[0, "timestamp_str"] = "2026-01-20" + HOSTILE
    out = io.StringIO()
    show_frame(frame, console(out, 160), all_rows=False)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "\x1b]0;" not in text
    assert "\r" not in text
    assert "\u202e" not in text
    assert "\\x1b]0;owned" in text
    assert "US short interest" in text
    assert "HK short interest" in text
    assert "--all shows every row" in text
    assert "writes everything" in text
    assert "US.AAPL: 7 rows" in text
    assert "1,234,567" in text  # cells are never cut short
    out = io.StringIO()
    show_frame(frame, console(out), all_rows=True)  # type: ignore[arg-type]
    assert "--all" not in out.getvalue()
    assert all(f"2026-01-{day}" in out.getvalue() for day in range(14, 21))


def test_decimal_places_are_per_column_not_per_code() -> None:
    frame = mixed_frame()
    frame.loc[frame["code"] == "US.TSLA", "close_price"] = 3.125
    (us, _) = market_tables(frame, newest=5)
    price = us.columns.index("close_price")
    cells = [row[price] for row in us.rows]
    # US.AAPL's 10.5 gets US.TSLA's three places: one column, one number of decimals.
    assert cells == ["10.500"] * 5 + ["3.125"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("width", [44, 60])
def test_a_narrow_terminal_leaves_columns_out_but_never_cuts_a_number(width: int) -> None:
    pytest.importorskip("rich")
    frame = mixed_frame()
    frame["avg_daily_share_volume"] = 987_654_321
    out = io.StringIO()
    show_frame(frame, console(out, width), all_rows=True)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    us_part = " ".join(text.partition("HK short interest")[0].split())
    assert "1,234,567" in us_part  # the first value column is always kept, whole
    assert "Left out for the terminal's width: " in us_part
    if "987,654,321" not in us_part:
        assert "avg daily share volume" in us_part
    wide = io.StringIO()
    show_frame(frame, console(wide, 80), all_rows=True)  # type: ignore[arg-type]
    assert "Left out" not in wide.getvalue()
    assert "987,654,321" in wide.getvalue()
    # Numbers line up on the right, under their headers.
    assert "1,234,567      0.5  987,654,321" in wide.getvalue()


def test_without_rich_a_terminal_gets_one_hint_line_and_the_whole_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiomoomoo.cli import _terminal

    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setattr(_terminal, "_hinted", False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    frame = mixed_frame()
    frame.loc[0, "timestamp_str"] = "2026-01-20" + HOSTILE
    emit_frame(frame, "table", None, all_rows=False)
    emit_frame(frame, "table", None, all_rows=False)
    assert capsys.readouterr().err == RICH_HINT + "\n"  # once, however many views
    assert "pip install 'aiomoomoo[cli]'" in RICH_HINT
    text = terminal.getvalue()
    assert "\x1b" not in text
    assert "\\x1b]0;owned" in text
    # pandas' whole table: every row, the code column first.
    assert text.splitlines()[0].split()[0] == "code"
    assert len(text.splitlines()) == 2 * (1 + len(frame))


def test_every_table_has_one_column_order() -> None:
    frame = pd.DataFrame(
        {
            "last_seen": [1],
            "aggregated_short": [2],
            "shares_short_change": [3],
            "timestamp_str": ["2026-01-02"],
            "first_seen": [4],
            "code": ["HK.00700"],
            "shares_short": [5],
            "aggregated_short_change_percent": [6.0],
            "timestamp": [7],
        }
    )
    assert list(in_column_order(frame).columns) == [
        "code",
        "timestamp",
        "timestamp_str",
        "shares_short",
        "aggregated_short",
        "shares_short_change",
        "aggregated_short_change_percent",
        "first_seen",
        "last_seen",
    ]
    us = pd.DataFrame(columns=[*reversed(US_COLUMNS), "code"])
    assert list(in_column_order(us).columns) == ["code", *US_COLUMNS]
    hk = pd.DataFrame(columns=[*reversed(HK_COLUMNS), "code"])
    assert list(in_column_order(hk).columns) == ["code", *HK_COLUMNS]


class _Refusing(importlib.abc.MetaPathFinder):
    """Makes ``import pyarrow`` fail as pyarrow 26 does beside numpy 1.x."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == "pyarrow":
            raise ImportError("pyarrow 26.0.0 requires numpy>=2.0, but numpy 1.26.4 is installed")


def test_the_parquet_hint_shows_the_real_import_error_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in sys.modules if n == "pyarrow" or n.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Refusing(), *sys.meta_path])
    problem = parquet_problem()
    assert problem is not None
    assert "numpy 1.26.4 is installed" in problem  # the real error, as it was raised
    assert "pip install 'numpy>=2'" in problem
    assert "'pyarrow<26'" in problem
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert parquet_problem() == "parquet output needs pyarrow: pip install 'aiomoomoo[parquet]'"
