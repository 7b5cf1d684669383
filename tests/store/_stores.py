"""Stores written without a network: rows handed straight to the store's writer."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiomoomoo import ShortInterestStore
from aiomoomoo._security import parse_code
from aiomoomoo.store._write import StoreWriter


def us(
    date: str,
    shares_short: int | None,
    days_to_cover: float | None = 2.0,
    short_percent: float | None = 1.5,
) -> tuple[Any, ...]:
    """A US row: (timestamp, date, shares short, short %, volume, days to cover, prices)."""
    return (1_700_000_000, date, shares_short, short_percent, 200, days_to_cover, 10.0, 9.5)


def hk(date: str, aggregated_short: int | None, ratio: float | None = 0.25) -> tuple[Any, ...]:
    """An HK row: (timestamp, date, aggregated short, its ratio, prices)."""
    return (1_700_000_000, date, aggregated_short, ratio, 400.0, 398.0)


def write(path: Path, pages: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
    """Store each code's rows (newest first) as one complete page, creating the file if needed.

    Writing a code again stores a revision of any row whose values changed.
    """
    ShortInterestStore(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        writer = StoreWriter(db)
        for code, rows in pages.items():
            writer.store_page(parse_code(code), None, list(rows), "-1")


def mixed(path: Path, *, codes: int = 12, seed: int = 1) -> None:
    """A store of ``codes`` US and as many HK codes over three years, gaps and zeros included."""
    rnd = random.Random(seed)
    dates = [f"{2024 + m // 12}-{m % 12 + 1:02d}-15" for m in range(30)][::-1]
    pages: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(codes):
        pages[f"US.S{i:03d}"] = [
            us(
                d,
                rnd.choice([0, None, rnd.randrange(1, 9000)]),
                rnd.choice([None, rnd.random() * 9]),
            )
            for d in dates[: 5 + 2 * i]
        ]
        pages[f"HK.{i:05d}"] = [hk(d, rnd.randrange(1, 700), rnd.random()) for d in dates[: 3 + i]]
    write(path, pages)
