"""The universe file of ``aiomoomoo sync --universe``: codes one per line, or a CSV file's
``code`` column, read whole before anything is sent."""

from __future__ import annotations

import csv
from pathlib import Path

from .._security import parse_code

__all__ = ["read_universe"]


def read_universe(path: Path) -> list[str]:
    """The codes in ``path``: one per line, or a CSV file's ``code`` column.

    Blank lines and lines starting with ``#`` are skipped. A line that is not a code, or a code
    listed twice, raises ``ValueError`` naming the file and line, so nothing is sent.
    """
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    fields = [name.strip().lower() for name in next(csv.reader([header]), [])]
    # A header naming a code column makes a CSV file, one column or many: "code" is never a
    # code itself (a code has a market prefix), so a plain list cannot start with it.
    column = fields.index("code") if "code" in fields else None
    codes: dict[str, int] = {}
    seen_header = False
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if column is not None:
            if not seen_header:
                seen_header = True
                continue
            cells = next(csv.reader([line]), [])
            value = cells[column].strip() if column < len(cells) else ""
        else:
            value = line.strip()
        try:
            code = parse_code(value).code
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {value!r} is not a code: {exc}") from None
        if code in codes:
            raise ValueError(
                f"{path}:{number}: {code} is listed twice (first on line {codes[code]})"
            )
        codes[code] = number
    return list(codes)
