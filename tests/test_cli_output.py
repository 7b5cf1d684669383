"""The command line's pieces without sockets: escaping, formats, the terminal view's tables,
the quota clock behind "waiting for quota" and the ETA."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from aiomoomoo import HK_COLUMNS
from aiomoomoo.cli._output import (
    check_writable,
    escape,
    format_for,
    market_tables,
    show_frame,
)
from aiomoomoo.cli._progress import QuotaClock, duration

HOSTILE = "unknown stock\x1b]0;owned\x07\x1b[2J\r\n all symbols fetched OK\u202eKO\x9b31m"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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


@pytest.mark.parametrize("use_rich", [True, False], ids=["rich", "plain"])
def test_the_terminal_view_escapes_cells_and_hints_at_the_rest(use_rich: bool) -> None:
    if use_rich:
        pytest.importorskip("rich")
    frame = mixed_frame()
    frame.loc[0, "timestamp_str"] = "2026-01-20" + HOSTILE
    out = io.StringIO()
    show_frame(frame, all_rows=False, stream=out, use_rich=use_rich)
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
    show_frame(frame, all_rows=True, stream=out, use_rich=use_rich)
    assert "--all" not in out.getvalue()
    assert all(f"2026-01-{day}" in out.getvalue() for day in range(14, 21))


# -- the quota clock ------------------------------------------------------------------------


def test_the_quota_clock_sees_a_full_window_and_its_end() -> None:
    clock = FakeClock()
    quota = QuotaClock(3, 10.0, clock=clock)
    assert quota.wait_left() == 0
    for _ in range(3):
        quota.record()
        clock.now += 1
    # Replies at 100, 101, 102: the first slot frees at 110.
    assert quota.wait_left() == pytest.approx(7.0)
    clock.now = 110.5
    assert quota.wait_left() == 0


def test_the_eta_is_the_least_time_the_quota_allows() -> None:
    clock = FakeClock()
    quota = QuotaClock(3, 10.0, clock=clock)
    assert quota.eta(0) == 0
    assert quota.eta(3) == 0  # three free slots: all can go now
    assert quota.eta(4) == pytest.approx(10.0)
    assert quota.eta(7) == pytest.approx(20.0)
    quota.record()  # at 100
    clock.now = 104.0
    # Two free slots now, the third frees at 110, then each a period later.
    assert quota.eta(2) == 0
    assert quota.eta(3) == pytest.approx(6.0)
    assert quota.eta(4) == pytest.approx(10.0)
    assert quota.eta(6) == pytest.approx(16.0)


def test_durations_read_as_a_person_would_say_them() -> None:
    assert [duration(s) for s in (-0.01, 0.24, 9.9, 41.2, 65, 3725)] == [
        "0.0 s",
        "0.2 s",
        "9.9 s",
        "42 s",
        "1 min 05 s",
        "1 h 02 min",
    ]
