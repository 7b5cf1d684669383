"""The store's one writer: a page's rows with the walk's position, and a code's outcome.

The ``segments`` table says which stretches of a code's history are stored complete: a segment
runs from ``high`` (its newest date) down to ``low``, and ``next_key`` is where a walk continues
below it (``"-1"`` when it reaches the start of the history). A walk always begins at the first
page with a new segment; each page extends it downwards, and when it reaches an older segment the
two merge and the walk jumps to the merged segment's ``next_key``: ``"-1"`` when the history is
whole, otherwise the saved key of an unfinished backfill. A page's rows and its segment change
commit in one transaction, so a killed sync leaves a store the next one continues.

The writer takes plain rows (`ShortInterestPage.records` tuples), never protobuf messages.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from .._errors import ProtocolError
from .._frames import columns_for
from .._options import END_OF_DATA
from .._rows import EARLIEST_DATE, LATEST_DATE, trading_date
from .._security import Market, Security
from . import _schema as sql

__all__ = [
    "StoreWriter",
    "StoredPage",
    "day_number",
    "day_text",
    "utc_micros",
    "utc_now",
    "utc_text",
]

_INT64_MAX: Final = 2**63 - 1
# Per market, where each of `VALUE_COLUMNS` is in a record (None: not the market's column).
_POSITIONS: Final = {
    market: tuple(
        columns_for(market).index(column) if column in columns_for(market) else None
        for column in sql.VALUE_COLUMNS
    )
    for market in Market
}
_TIMESTAMP: Final = sql.VALUE_COLUMNS.index("timestamp")
_DATE: Final = sql.VALUE_COLUMNS.index("timestamp_str")


def utc_text(moment: dt.datetime) -> str:
    """``moment`` as the store writes sync times: fixed-width ISO UTC, so text order is time
    order."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    """The current time as the store writes sync times."""
    return utc_text(dt.datetime.now(dt.UTC))


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_micros(moment: dt.datetime) -> int:
    """``moment`` (timezone-aware) as the store writes version times: integer microseconds
    since the Unix epoch."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def day_number(day: dt.date) -> int:
    """``day`` as the store writes dates: the integer ``YYYYMMDD``."""
    return day.year * 10000 + day.month * 100 + day.day


def day_text(number: int) -> str:
    """A stored date (`day_number`) as ``YYYY-MM-DD`` text."""
    return f"{number // 10000:04d}-{number // 100 % 100:02d}-{number % 100:02d}"


@dataclass(frozen=True, slots=True)
class StoredPage:
    """What storing a page did: the walk's ``segment`` (its id), the key its stored stretch
    continues at (``"-1"`` once it reaches the start of the history), the rows that were
    new or revised, and the ``newest`` date on the page (``YYYY-MM-DD``; None without rows)."""

    segment: int
    resume_key: str
    rows_new: int
    rows_revised: int
    newest: str | None = None


class StoreWriter:
    """Every change to a store's file, each in one transaction on ``db``."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._last_moment = 0

    def _moment(self) -> int:
        """Now, in microseconds, and later than any moment this writer gave before: a version
        is keyed by the moment it was first seen, so two pages never share one."""
        self._last_moment = max(utc_micros(dt.datetime.now(dt.UTC)), self._last_moment + 1)
        return self._last_moment

    def store_page(
        self,
        security: Security,
        segment: int | None,
        records: Sequence[tuple[Any, ...]],
        next_key: str,
    ) -> StoredPage:
        """Store one page's ``records`` (tuples in `columns_for` order of the code's market,
        None for a field left out) and move the walk's ``segment`` (None on its first page)
        down to them, in one transaction.

        ``next_key`` is the key OpenD gave for the page after this one. A row without a date
        or with an integer beyond int64 raises `ProtocolError` before anything is written.
        """
        rows = [_values(security, record) for record in records]
        now = self._moment()
        new = revised = superseded = 0
        code = security.code
        with sql.transaction(self._db) as db:
            db.execute(sql.INSERT_CODE, (code, security.market.name))
            (code_id,) = db.execute(sql.SELECT_CODE_ID, (code,)).fetchone()
            for day, values in rows:
                # (first_seen, whether it holds these values as the file keeps them).
                current = db.execute(sql.SELECT_CURRENT, (*values, code_id, day)).fetchone()
                if current is not None and current[1]:
                    db.execute(sql.MARK_SEEN, (now, code_id, day, current[0]))
                    continue
                if current is None:
                    new += 1
                elif current[0] == now:
                    # The same date twice in this page: the version it wrote gives way.
                    revised += 1
                    db.execute(sql.REPLACE_VALUES, (*values, code_id, day, now))
                    continue
                else:
                    revised += 1
                    superseded += 1
                    db.execute(sql.SUPERSEDE, (now, code_id, day, current[0]))
                db.execute(sql.INSERT_VERSION, (code_id, day, *values, now, now))
            if rows:
                numbers = [day for day, _ in rows]
                span = (min(numbers), min(numbers), max(numbers), max(numbers))
                db.execute(sql.COUNT_PAGE, (new, superseded, *span, code_id))
            dates = [day_text(day) for day, _ in rows]
            page_low = min(dates) if dates else None
            if segment is None:
                high = max(dates) if dates else None
                cursor = db.execute(sql.INSERT_SEGMENT, (code, high, page_low, next_key))
                assert cursor.lastrowid is not None
                segment, low, key = cursor.lastrowid, page_low, next_key
            else:
                low, key = db.execute(sql.SELECT_SEGMENT, (segment,)).fetchone()
                if next_key == END_OF_DATA:
                    key = END_OF_DATA
                if page_low is not None and (low is None or page_low < low):
                    low = page_low
                    if key != END_OF_DATA:
                        key = next_key
            low, key = _merge_below(db, code, segment, low, key)
            db.execute(sql.UPDATE_SEGMENT, (low, key, segment))
        return StoredPage(segment, key, new, revised, max(dates) if dates else None)

    def record_outcome(self, security: Security, error: BaseException | None) -> None:
        """Record the end of ``security``'s walk: its sync time, or the error that stopped it
        (kept until the code next syncs without one)."""
        with sql.transaction(self._db) as db:
            db.execute(sql.INSERT_CODE, (security.code, security.market.name))
            if error is None:
                db.execute(sql.MARK_SYNCED, (utc_now(), security.code))
            else:
                message = f"{type(error).__name__}: {error}"
                db.execute(sql.MARK_FAILED, (message, security.code))

    def record_frontiers(
        self, moved: Mapping[Market, tuple[dt.date, dt.date]], asked: Mapping[str, dt.date]
    ) -> None:
        """Record each market's frontier that ``moved``: (its newest date, the market's date
        it was first seen), and the frontier each code was ``asked`` at, in one transaction."""
        with sql.transaction(self._db) as db:
            db.executemany(
                sql.SET_FRONTIER,
                [(m.name, day.isoformat(), seen.isoformat()) for m, (day, seen) in moved.items()],
            )
            db.executemany(sql.SET_ASKED, [(c, day.isoformat()) for c, day in asked.items()])


def _values(security: Security, record: tuple[Any, ...]) -> tuple[int, tuple[Any, ...]]:
    """A record as (trading date as `day_number`, value per `VALUE_COLUMNS`), None where left
    out."""
    values = tuple(None if at is None else record[at] for at in _POSITIONS[security.market])
    for column, value in zip(sql.VALUE_COLUMNS, values, strict=True):
        if isinstance(value, int) and value > _INT64_MAX:
            raise ProtocolError(f"OpenD sent a {column} beyond the int64 range: {value}")
    text, stamp = values[_DATE], values[_TIMESTAMP]
    day: dt.date | None
    if text:
        # The page's check refuses such a row before it gets here; a date is the store's key,
        # and planning reads it back, so none that is not one is ever written.
        day = trading_date(text)
    elif stamp is not None:
        zone = ZoneInfo(security.market.timezone)
        try:
            day = dt.datetime.fromtimestamp(stamp, zone).date()
            # Within the range a trading date has, as a date text is.
            day = trading_date(day.isoformat())
        except (OverflowError, OSError, ValueError):
            raise ProtocolError(
                f"OpenD sent a {security.code} row without a date and with timestamp {stamp}, "
                "which is no date; it cannot be stored"
            ) from None
    else:
        raise ProtocolError(f"OpenD sent a {security.code} row without a date; it cannot be stored")
    if day is None:
        shown = str(text) if text else f"{stamp} (its timestamp)"
        raise ProtocolError(
            f"OpenD sent a {security.code} row dated {shown!r}, which is not a YYYY-MM-DD "
            f"date from {EARLIEST_DATE} to {LATEST_DATE}; it cannot be stored"
        )
    return day_number(day), values


def _merge_below(
    db: sqlite3.Connection, code: str, segment: int, low: str | None, key: str
) -> tuple[str | None, str]:
    """Merge into ``segment`` every older segment it now reaches; return its new (low, key)."""
    # A segment that ends the history reaches down to before any date ("" sorts first).
    bottom = "" if key == END_OF_DATA else low
    if bottom is None:
        return low, key
    reached = db.execute(sql.SEGMENTS_REACHED, (code, segment, bottom)).fetchall()
    if not reached:
        return low, key
    candidates = [(low, key), *((other_low, other_key) for _, other_low, other_key in reached)]
    # The merged segment continues below whichever part reaches lowest.
    key = min(candidates, key=lambda c: "" if c[1] == END_OF_DATA else (c[0] or ""))[1]
    lows = [c[0] for c in candidates if c[0] is not None]
    db.executemany(sql.DELETE_SEGMENT, [(other,) for other, _, _ in reached])
    return (min(lows) if lows else None), key
