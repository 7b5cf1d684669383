"""The SQL of screens and changes: each code's newest row against the one before, in one query.

A sibling of `aiomoomoo.store._schema`, which owns the file format: these statements read only
the ``versions`` and ``codes`` tables, through `_schema`'s rule for which versions count (the
current ones, or those known at a moment), so a change of format is adapted here in one place.
Window functions rank each code's rows newest first; the newest row and its predecessor's
value come out of one pass, and filters, order and limit run in SQLite, not in pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._frames import columns_for
from .._security import Market
from ._schema import _CURRENT, _KNOWN_AT

__all__ = ["CHANGED", "changes_query", "screen_query", "sql_of"]

#: The column whose period-on-period change a market's rows carry: its short position.
CHANGED: Final = {Market.US: "shares_short", Market.HK: "aggregated_short"}

# Each code's rows as counted (current, or known at the moment of the first two parameters), of
# the market named by the next parameter, ranked newest first, with the next older row's value.
_RANKED: Final = """
    SELECT v.code AS code, v.date AS date, {columns}, v.first_seen AS first_seen,
           v.last_seen AS last_seen,
           ROW_NUMBER() OVER newest_first AS n,
           LEAD(v.date) OVER newest_first AS previous_date,
           LEAD(v.{changed}) OVER newest_first AS previous
    FROM versions v JOIN codes c ON c.code = v.code
    WHERE {known} AND c.market = ?
    WINDOW newest_first AS (PARTITION BY v.code ORDER BY v.date DESC)
"""


def sql_of(market: Market, column: str) -> str:
    """The SQL expression of a screen's output ``column`` (see `screen_query`); KeyError if
    ``market``'s rows have none by that name."""
    changed = CHANGED[market]
    derived = {
        f"{changed}_previous": "previous",
        f"{changed}_change": "change",
        f"{changed}_change_percent": "change_percent",
    }
    if column in derived:
        return derived[column]
    if column in ("code", "first_seen", "last_seen", *columns_for(market)):
        return column
    raise KeyError(column)


def _ranked(market: Market, *, as_of: bool) -> str:
    columns = ", ".join(f"v.{name} AS {name}" for name in columns_for(market))
    known = _KNOWN_AT if as_of else _CURRENT
    return _RANKED.format(columns=columns, changed=CHANGED[market], known=known)


def screen_query(
    market: Market,
    *,
    as_of: bool,
    conditions: Sequence[str],
    order_by: str,
    descending: bool,
    limit: bool,
) -> str:
    """Each ``market`` code's newest row (``code``, the market's columns, ``first_seen``,
    ``last_seen``, then ``previous``: the older row's short position), filtered and sorted.

    Parameters: the moment twice when ``as_of``, the market's name, one value per condition,
    then the row limit when ``limit``. ``conditions`` are ``"<expression> >= ?"``-style texts
    over `sql_of`'s expressions (``change`` and ``change_percent`` exact, not rounded);
    ``order_by`` is one such expression, NULLs last, ties by code.
    """
    names = ["code", *columns_for(market), "first_seen", "last_seen", "previous"]
    where = " AND ".join(["n = 1", *conditions])
    direction = "DESC" if descending else "ASC"
    changed = CHANGED[market]
    return f"""
        WITH ranked AS ({_ranked(market, as_of=as_of)}),
        newest AS (
            SELECT *, {changed} - previous AS change,
                   ({changed} - previous) * 100.0 / NULLIF(previous, 0) AS change_percent
            FROM ranked
        )
        SELECT {", ".join(names)} FROM newest WHERE {where}
        ORDER BY {order_by} {direction} NULLS LAST, code
        {"LIMIT ?" if limit else ""}
    """


def changes_query(market: Market, *, as_of: bool, since: bool) -> str:
    """Each ``market`` code's newest row against the one before it, or against its row at the
    newest date on or before a ``since`` date: ``code``, ``date``, the value, ``previous_date``,
    the previous value, largest absolute percent change first (exact, before rounding), codes
    without a change last, ties by code.

    Parameters: the moment twice when ``as_of``, the market's name, and with ``since`` the
    moment twice again, the market's name again and the date.
    """
    changed = CHANGED[market]
    known = _KNOWN_AT if as_of else _CURRENT
    if since:
        against = f"""
            SELECT r.code, r.date, r.{changed} AS value, b.date AS previous_date,
                   b.value AS previous
            FROM ranked r LEFT JOIN (
                SELECT v.code AS code, v.date AS date, v.{changed} AS value,
                       ROW_NUMBER() OVER (PARTITION BY v.code ORDER BY v.date DESC) AS n
                FROM versions v JOIN codes c ON c.code = v.code
                WHERE {known} AND c.market = ? AND v.date <= ?
            ) b ON b.code = r.code AND b.n = 1
            WHERE r.n = 1
        """
    else:
        against = f"""
            SELECT code, date, {changed} AS value, previous_date, previous
            FROM ranked WHERE n = 1
        """
    return f"""
        WITH ranked AS ({_ranked(market, as_of=as_of)}),
        pairs AS ({against})
        SELECT code, date, value, previous_date, previous FROM pairs
        ORDER BY ABS((value - previous) * 100.0 / NULLIF(previous, 0)) DESC NULLS LAST, code
    """
