"""Reading a store: per-code states for planning, and the frames `ShortInterestStore` returns.

Each read is one set-based query over all the codes it covers (never a query per code), turned
into a frame with the official columns and dtypes plus the change columns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import pandas as pd

from .._frames import columns_for, empty_frame
from .._security import Market, Security
from . import _schema as sql
from . import _screen_sql as screen_sql
from ._plan import RECENT_DATES, CodeState, Frontier

__all__ = ["CONDITIONS", "GENERIC_ORDER", "StoreReader"]


class StoreReader:
    """The reads of a store open on ``db``; arguments are already checked."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def codes(self) -> list[str]:
        """Every code synced at least once, sorted."""
        return [code for (code,) in self._db.execute(sql.SELECT_CODES)]

    def markets(self) -> list[Market]:
        """The markets of the codes stored."""
        return [Market[str(m)] for (m,) in self._db.execute(sql.SELECT_MARKETS)]

    def has(self, security: Security) -> bool:
        """Whether ``security`` has been synced at least once."""
        return self._db.execute(sql.CODE_EXISTS, (security.code,)).fetchone() is not None

    def code_states(self, *, recent: bool = False) -> dict[str, CodeState]:
        """What the store holds of each code it knows, by code; with ``recent``, also how many
        of its market's newest dates each code has rows for (a second pass over the rows,
        needed only to choose probes)."""
        asked = dict(self._db.execute(sql.SELECT_ASKED).fetchall())
        counts = (
            dict(self._db.execute(sql.RECENT_ROWS, (RECENT_DATES,)).fetchall()) if recent else {}
        )
        return {
            str(code): CodeState(
                market=Market[str(market)],
                rows=int(rows),
                newest=None if newest is None else _date_of(int(newest)),
                complete=bool(complete),
                failed=bool(failed),
                asked=_date(asked.get(code)),
                recent=int(counts.get(code, 0)),
            )
            for code, market, rows, newest, complete, failed in self._db.execute(sql.CODE_STATES)
        }

    def frontiers(self) -> dict[Market, Frontier]:
        """Each market's frontier as the syncs recorded it."""
        return {
            Market[str(market)]: Frontier(dt.date.fromisoformat(newest), _date(moved))
            for market, newest, moved in self._db.execute(sql.SELECT_FRONTIERS)
            if str(market) in Market.__members__
        }

    def summary(self) -> pd.DataFrame:
        """`ShortInterestStore.summary`."""
        rows = self._db.execute(sql.SUMMARY).fetchall()
        columns = ["code", "market", "rows", "oldest", "newest", "revisions"]
        columns += ["complete", "last_synced", "last_error"]
        frame = pd.DataFrame(rows, columns=columns)
        frame = frame.astype(
            {"code": "string", "market": "string", "rows": "int64", "revisions": "int64"}
        )
        frame["complete"] = frame["complete"].astype(bool)
        frame["last_synced"] = pd.to_datetime(frame["last_synced"], utc=True, format="ISO8601")
        return frame

    def history(self, security: Security, *, since: str | None, as_of: int | None) -> pd.DataFrame:
        """`ShortInterestStore.history` of a code the store has (see `has`)."""
        frame = self._frame(security.market, as_of, "code", security.code)
        if since is not None:
            keep = (frame["timestamp_str"] >= since).fillna(True).to_numpy(dtype=bool)
            frame = frame[keep].reset_index(drop=True)
        return frame.drop(columns="code")

    def latest(self, markets: list[Market], *, as_of: int | None) -> pd.DataFrame:
        """`ShortInterestStore.latest` over ``markets``."""
        parts = [self._frame(m, as_of, "market", m.name, newest=True) for m in markets]
        return _union(parts).sort_values("code", kind="stable", ignore_index=True)

    @staticmethod
    def columns(markets: list[Market]) -> list[str]:
        """The columns of `latest` (and of a screen) over ``markets``, without a query."""
        return list(_union([_to_frame(market, []) for market in markets]).columns)

    def screen(
        self,
        markets: list[Market],
        *,
        as_of: int | None,
        conditions: list[tuple[str, str, float]],
        by: str | None,
        ascending: bool,
        top: int | None,
    ) -> pd.DataFrame:
        """`ShortInterestStore.screen`: ``conditions`` are (what, ``">="`` or ``"<="``, value)
        with what one of `CONDITIONS`, each checked to apply to every market of ``markets``."""
        parts = []
        for market in markets:
            where = [
                f"{CONDITIONS[market][what]} {op} :bound{index}"
                for index, (what, op, _) in enumerate(conditions)
            ]
            order = "code" if by is None else _order_of(market, by)
            query = screen_sql.screen_query(
                market,
                as_of=as_of is not None,
                conditions=where,
                order_by=order,
                descending=by is not None and not ascending,
                limit=top is not None,
            )
            params: dict[str, object] = {
                "market": market.name,
                "as_of": as_of,
                "limit": top,
                **{f"bound{index}": value for index, (_, _, value) in enumerate(conditions)},
            }
            rows = self._db.execute(query, params).fetchall()
            parts.append(_to_frame(market, rows, with_previous=True))
        frame = _union(parts)
        if len(parts) > 1:
            # Each market came sorted and cut to ``top`` by SQLite: merge the two.
            if by is None:
                frame = frame.sort_values("code", ignore_index=True)
            else:
                frame = (
                    frame.assign(_key=_sort_key(frame, by))
                    .sort_values(
                        ["_key", "code"],
                        ascending=[ascending, True],
                        na_position="last",
                        ignore_index=True,
                    )
                    .drop(columns="_key")
                )
            if top is not None:
                frame = frame.head(top)
        return frame

    def changes(self, market: Market, *, since: str | None, as_of: int | None) -> pd.DataFrame:
        """`ShortInterestStore.changes`; ``since`` is ``YYYY-MM-DD`` text."""
        query = screen_sql.changes_query(market, as_of=as_of is not None, since=since is not None)
        cutoff = None if since is None else int(since.replace("-", ""))
        params = {"market": market.name, "as_of": as_of, "since": cutoff}
        rows = self._db.execute(query, params).fetchall()
        code, date, value, previous_date, previous = (
            list(column) for column in (zip(*rows, strict=True) if rows else [()] * 5)
        )
        changed = screen_sql.CHANGED[market]
        current: Any = pd.Series(pd.array(value, dtype="Int64"))
        before: Any = pd.Series(pd.array(previous, dtype="Int64"))
        change = current - before
        # As the frames compute it (`_columns_frame`): nothing to divide by after a zero.
        ratio = change.astype("Float64") / before.astype("Float64").replace(0, pd.NA)
        return pd.DataFrame(
            {
                "code": pd.array(code, dtype="string"),
                "date": pd.array(date, dtype="string"),
                "previous_date": pd.array(previous_date, dtype="string"),
                changed: current,
                f"{changed}_previous": before,
                f"{changed}_change": change,
                f"{changed}_change_percent": (ratio * 100).round(2).astype("float64"),
            }
        )

    def batches(
        self,
        codes: list[str] | None,
        markets: list[Market],
        *,
        since: str | None,
        as_of: int | None,
        size: int,
    ) -> Iterator[pd.DataFrame]:
        """`ShortInterestStore.history_batches`: ``codes`` (None: every code) of ``markets``, in
        frames of about ``size`` rows, read from one cursor (one snapshot of the file)."""
        query = sql.export_query(codes=codes is not None, as_of=as_of is not None)
        params: tuple[Any, ...] = () if as_of is None else (as_of, as_of)
        if codes is not None:
            params += (json.dumps(codes),)
        cursor = self._db.execute(query, params)
        pending: list[tuple[Any, ...]] = []
        sent = False
        try:
            while chunk := cursor.fetchmany(size):
                rows = pending + chunk
                # A code's rows stay together: its change columns need each row's previous one.
                cut = len(rows)
                while cut and rows[cut - 1][0] == rows[-1][0]:
                    cut -= 1
                pending = rows[cut:]
                if cut:
                    yield _export_frame(rows[:cut], markets, since)
                    sent = True
            if pending or not sent:
                yield _export_frame(pending, markets, since)
        finally:
            # A generator dropped after its store closed has no cursor left to close.
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()

    def _frame(
        self, market: Market, as_of: int | None, by: str, value: str, *, newest: bool = False
    ) -> pd.DataFrame:
        """Rows of ``market`` whose code has ``by`` (a column of ``codes``) equal to ``value``,
        as the store knew them at ``as_of``, newest first per code, with the change columns;
        only the newest per code when ``newest``."""
        query = sql.rows_query(market, as_of=as_of is not None, by=by, newest=newest)
        moments = () if as_of is None else (as_of, as_of) * (2 if newest else 1)
        frame = _to_frame(market, self._db.execute(query, (value, *moments)).fetchall())
        if newest and len(frame):
            frame = frame[~frame["code"].duplicated()].reset_index(drop=True)
        return frame


def _union(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of both markets' parts (US first), with every column of either."""
    if len(parts) == 1:
        return parts[0]
    dtypes = {**parts[0].dtypes.to_dict(), **parts[1].dtypes.to_dict()}
    columns = list(dict.fromkeys([*parts[0].columns, *parts[1].columns]))
    # code, both markets' official columns, the change columns, then the seen times.
    derived = [c for c in columns if "_short_" in c and c not in sql.VALUE_COLUMNS]
    order = [c for c in columns if c not in derived and not c.endswith("_seen")]
    order += [*derived, "first_seen", "last_seen"]
    # The other market's columns are added as typed missing values: concatenating untyped
    # all-NA columns is deprecated in pandas 2.x and would change dtypes in pandas 3.
    return pd.concat(
        [
            part.assign(
                **{
                    c: pd.Series(None, index=part.index, dtype=dtypes[c])
                    for c in order
                    if c not in part.columns
                }
            )[order]
            for part in parts
        ],
        ignore_index=True,
    ).astype({c: dtypes[c] for c in order})


# Where each market's columns are in an export row: code, then `columns_for`, then the times.
_EXPORT_AT: Final = {
    market: (
        0,
        *(2 + sql.VALUE_COLUMNS.index(column) for column in columns_for(market)),
        2 + len(sql.VALUE_COLUMNS),
        3 + len(sql.VALUE_COLUMNS),
    )
    for market in Market
}


_EXPORT_WIDTH: Final = 4 + len(sql.VALUE_COLUMNS)


def _export_frame(
    rows: list[tuple[Any, ...]], markets: list[Market], since: str | None
) -> pd.DataFrame:
    """Export rows (`sql.export_query`'s, sorted by code) as one frame of ``markets``' columns,
    the change columns computed before ``since`` (a ``YYYY-MM-DD`` text) leaves older rows out."""
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * _EXPORT_WIDTH
    market_of = np.asarray(columns[1], dtype=object)
    parts = []
    for market in markets:
        at = _EXPORT_AT[market]
        mine = market_of == market.name
        if mine.all():
            chosen = [columns[i] for i in at]
        else:
            where = np.flatnonzero(mine)
            chosen = [np.asarray(columns[i], dtype=object)[where] for i in at]
        part = _columns_frame(market, chosen)
        if since is not None:
            keep = (part["timestamp_str"] >= since).fillna(True).to_numpy(dtype=bool)
            part = part[keep].reset_index(drop=True)
        parts.append(part)
    frame = _union(parts)
    if len(markets) == 1:
        return frame
    return frame.sort_values("code", kind="stable", ignore_index=True)


#: What a screen's conditions compare, per market: the SQL expression of `_screen_sql`.
CONDITIONS: Final = {
    Market.US: {
        "days_to_cover": "days_to_cover",
        "short_percent": "short_percent",
        "change_percent": "change_percent",
    },
    Market.HK: {"short_percent": "aggregated_short_ratio", "change_percent": "change_percent"},
}
#: Names a screen sorts by that mean each market's own short-position change.
GENERIC_ORDER: Final = ("change", "change_percent")


def _order_of(market: Market, by: str) -> str:
    """The SQL expression a screen of ``market`` sorts by for the column ``by``."""
    if by in GENERIC_ORDER:
        return by
    try:
        return screen_sql.sql_of(market, by)
    except KeyError:
        return "NULL"  # the other market's column: these rows have none


def _sort_key(frame: pd.DataFrame, by: str) -> pd.Series:
    """The values a two-market screen sorts by: ``by``'s column, or for a generic name each
    row's own market's change column."""
    if by not in GENERIC_ORDER:
        return frame[by]
    us, hk = (f"{screen_sql.CHANGED[m]}_{by}" for m in (Market.US, Market.HK))
    return frame[us].astype("Float64").fillna(frame[hk].astype("Float64"))


def _to_frame(
    market: Market, rows: list[tuple[Any, ...]], *, with_previous: bool = False
) -> pd.DataFrame:
    """A frame of ``code``, ``market``'s official columns, the change columns and the seen
    times, from query rows already sorted by code then date, newest first.

    ``with_previous``: each row ends with its previous period's value (a screen's one row per
    code), rather than the previous period being the next row down.
    """
    width = len(columns_for(market)) + 3 + with_previous
    values = list(zip(*rows, strict=True)) if rows else [()] * width
    given = values.pop() if with_previous else None
    return _columns_frame(market, values, given)


def _columns_frame(market: Market, values: list[Any], given: Any = None) -> pd.DataFrame:
    """`_to_frame` from the rows' columns (each a sequence); ``given``, the previous period's
    values, when the rows carry them."""
    template = empty_frame(market)
    data: dict[str, Any] = {"code": pd.array(values[0], dtype="string")}
    for index, column in enumerate(template.columns, start=1):
        column_values = values[index]
        if not isinstance(column_values, np.ndarray):
            column_values = list(column_values)
        data[column] = pd.array(column_values, dtype=template.dtypes[column])
    frame = pd.DataFrame(data)
    changed = screen_sql.CHANGED[market]
    current: Any = frame[changed]
    previous: Any
    if given is not None:
        previous = pd.Series(pd.array(list(given), dtype=current.dtype), index=frame.index)
    else:
        # Rows run newest first within each code, so the previous period is the next row down.
        previous = current.groupby(frame["code"], sort=False).shift(-1)
    change = current - previous
    ratio = change.astype("Float64") / previous.astype("Float64").replace(0, pd.NA) * 100
    frame[f"{changed}_previous"] = previous
    frame[f"{changed}_change"] = change
    frame[f"{changed}_change_percent"] = ratio.round(2).astype("float64")
    for offset, name in ((-2, "first_seen"), (-1, "last_seen")):
        frame[name] = _moments(values[offset])
    return frame


def _moments(values: Any) -> pd.Series:
    """Stored version times (integer microseconds since the epoch) as UTC datetimes."""
    micros = np.fromiter(values, dtype=np.int64, count=len(values))
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype("datetime64[us, UTC]")


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _date_of(number: int) -> dt.date:
    return dt.date(number // 10000, number // 100 % 100, number % 100)
