"""The universe file of ``aiomoomoo sync --universe``, read as the docs say: codes one per line,
or a CSV file's ``code`` column, however many columns it has."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiomoomoo.cli import main
from aiomoomoo.cli._universe import read_universe


@pytest.mark.parametrize(
    "text",
    [
        "code\nUS.AAPL\nHK.00700\n",
        "\ufeffCode \r\nUS.AAPL\r\n\r\nHK.00700\r\n",
        "# my universe\ncode\n# tech\nUS.AAPL\nHK.00700\n",
        'name,code\n"Apple, Inc.",US.AAPL\nTencent,HK.00700\n',
        "US.AAPL\nHK.00700\n",
    ],
    ids=["one-column-csv", "bom-crlf-and-case", "comments", "two-column-csv", "one-per-line"],
)
def test_codes_one_per_line_or_a_csv_code_column(tmp_path: Path, text: str) -> None:
    universe = tmp_path / "codes.csv"
    universe.write_text(text, encoding="utf-8", newline="")
    assert read_universe(universe) == ["US.AAPL", "HK.00700"]


def test_a_one_column_csv_line_that_is_not_a_code_is_named_with_its_line(tmp_path: Path) -> None:
    universe = tmp_path / "codes.csv"
    universe.write_text("code\nUS.AAPL\nApple\n")
    with pytest.raises(ValueError, match=r"codes\.csv:3: 'Apple' is not a code"):
        read_universe(universe)


def test_the_dry_run_reads_a_one_column_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    universe = tmp_path / "codes.csv"
    universe.write_text("code\nUS.AAPL\nHK.00700\n")
    store = tmp_path / "s.db"
    assert main(["sync", "--store", str(store), "--universe", str(universe), "--dry-run"]) == 0
    assert "codes: 2, due: 2, not due: 0" in capsys.readouterr().out
