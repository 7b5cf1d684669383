"""The SQL of screens and changes: each code's newest row against the one before, in one query.

A sibling of `aiomoomoo.store._schema`, which owns the file format: these statements read the
``codes`` and ``versions`` tables through `_schema`'s rule for which versions count (the current
ones, or those known at a moment), so a change of format is adapted here in one place. Each
code's newest date and the date it is compared with are found by seeks on the versions' (code,
date) key, not by ranking every row; filters, order and limit run in SQLite, not in pandas.
Dates come out as ``YYYY-MM-DD`` text, as the frames show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._frames import columns_for
from .._security import Market
from ._schema import _CURRENT, _KNOWN_AT, iso_date

__all__ = ["CHANGED", "changes_query", "screen_query", "sql_of"]

#: The column whose period-on-period change a market's rows carry: its short position.
CHANGED: Final = {Market.US: "shares_short", Market.HK: "aggregated_short"}


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


def _known(alias: str, as_of: bool) -> str:
    """Which versions count, for the table alias ``alias``: `_schema`'s rule (the current
    versions, or those known at ``:as_of``), with a named parameter as these queries repeat it."""
    if not as_of:
        return _CURRENT.format(alias)
    return _KNOWN_AT.format(alias).replace("?", ":as_of")


def _pairs(*, as_of: bool, since: bool) -> str:
    """Each ``:market`` code's newest row and the row it is compared with, as (code_id, date,
    previous_date), dates as the file keeps them (``:since`` too): seeks on the versions'
    (code, date) key, never a pass over every row of every code."""
    before = "p.date <= :since" if since else "p.date < n.date"
    return f"""
        SELECT n.code_id AS code_id, n.date AS date,
               (SELECT MAX(p.date) FROM versions p
                WHERE p.code_id = n.code_id AND {before} AND {_known("p", as_of)})
                   AS previous_date
        FROM (
            SELECT v.code_id AS code_id, MAX(v.date) AS date
            FROM codes c JOIN versions v ON v.code_id = c.id
            WHERE c.market = :market AND {_known("v", as_of)}
            GROUP BY v.code_id
        ) n
    """


def _selected(name: str) -> str:
    if name == "code":
        return "c.code AS code"
    if name == "date":
        return f"{iso_date('v.date')} AS date"
    return f"v.{name} AS {name}"


def _joined(market: Market, *, as_of: bool, since: bool, names: Sequence[str]) -> str:
    """`_pairs` with the newest row's ``names`` and ``previous``, the compared row's short
    position."""
    changed = CHANGED[market]
    selected = ", ".join(_selected(name) for name in names)
    return f"""
        SELECT {selected}, {iso_date("x.previous_date")} AS previous_date,
               p.{changed} AS previous
        FROM ({_pairs(as_of=as_of, since=since)}) x
        JOIN codes c ON c.id = x.code_id
        JOIN versions v ON v.code_id = x.code_id AND v.date = x.date AND {_known("v", as_of)}
        LEFT JOIN versions p
            ON p.code_id = x.code_id AND p.date = x.previous_date AND {_known("p", as_of)}
    """


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

    Named parameters: ``market`` (its name), ``as_of`` when ``as_of``, those
    the ``conditions`` name, and ``limit`` when ``limit``. ``conditions`` are
    ``"<expression> >= :name"``-style texts over `sql_of`'s expressions (``change`` and
    ``change_percent`` exact, not rounded); ``order_by`` is one such expression, NULLs last,
    ties by code.
    """
    names = ["code", *columns_for(market), "first_seen", "last_seen"]
    changed = CHANGED[market]
    where = " AND ".join(conditions) or "1"
    direction = "DESC" if descending else "ASC"
    return f"""
        SELECT {", ".join(names)}, previous FROM (
            SELECT *, {changed} - previous AS change,
                   ({changed} - previous) * 100.0 / NULLIF(previous, 0) AS change_percent
            FROM ({_joined(market, as_of=as_of, since=False, names=names)})
        )
        WHERE {where}
        ORDER BY {order_by} {direction} NULLS LAST, code
        {"LIMIT :limit" if limit else ""}
    """


def changes_query(market: Market, *, as_of: bool, since: bool) -> str:
    """Each ``market`` code's newest row against the one before it, or against its row at the
    newest date on or before ``:since``: ``code``, ``date``, the value, ``previous_date``, the
    previous value, largest absolute percent change first (exact, before rounding), codes
    without a change last, ties by code.

    Named parameters: ``market`` (its name), ``as_of`` when ``as_of`` and
    ``since`` when ``since``.
    """
    changed = CHANGED[market]
    pairs = _joined(market, as_of=as_of, since=since, names=["code", "date", changed])
    return f"""
        SELECT code, date, {changed}, previous_date, previous FROM ({pairs})
        ORDER BY ABS(({changed} - previous) * 100.0 / NULLIF(previous, 0)) DESC NULLS LAST, code
    """
