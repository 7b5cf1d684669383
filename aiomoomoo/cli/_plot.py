"""Charts of stored histories with matplotlib (extra ``plot``); imported only by ``aiomoomoo plot``.

One panel per code: the short position as a filled area (in millions of shares), days to cover
(US) or the short ratio (HK) on a second axis, and the close price on a third, all against the
trading date, with a legend naming each line. Every axis shows plain numbers in the unit its
label names, never an offset or a ``1e8`` factor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["draw"]

#: The short position's unit: a million shares.
MILLION: Final = 1_000_000
# (its measure, the measure's label, the position's label) per market, told apart by the columns.
_SERIES: Final = {
    "shares_short": ("days_to_cover", "days to cover (days)", "shares short (millions)"),
    "aggregated_short": (
        "aggregated_short_ratio",
        "short ratio (%)",
        "aggregated short (millions of shares)",
    ),
}


def _plain(axis: Any) -> None:
    """Tick labels in the axis' own unit: no offset, no scientific factor."""
    axis.ticklabel_format(axis="y", style="plain", useOffset=False)


def draw(frames: dict[str, pd.DataFrame], output: Path) -> Figure:
    """Draw ``frames`` (code -> `ShortInterestStore.history` frame, each with rows) into the
    image ``output``, whose suffix (``.png``, ``.svg``, ``.pdf``) picks the format; return the
    figure."""
    figure = Figure(figsize=(11, 3.2 * len(frames)), layout="constrained")
    axes = figure.subplots(len(frames), 1, squeeze=False)[:, 0]
    for ax, (code, frame) in zip(axes, frames.items(), strict=True):
        position = "shares_short" if "shares_short" in frame.columns else "aggregated_short"
        measure, measure_label, position_label = _SERIES[position]
        ordered = frame.iloc[::-1]
        days = pd.to_datetime(ordered["timestamp_str"].astype(object), errors="coerce")
        millions = ordered[position].astype("float64") / MILLION
        ax.fill_between(days, millions, color="tab:blue", alpha=0.25, linewidth=0)
        lines = ax.plot(days, millions, color="tab:blue", label=position_label)
        ax.set_ylabel(position_label, color="tab:blue")
        ax.set_title(code, loc="left", fontweight="bold")
        ratio = ax.twinx()
        lines += ratio.plot(days, ordered[measure], color="tab:orange", label=measure_label)
        ratio.set_ylabel(measure_label, color="tab:orange")
        price = ax.twinx()
        price.spines.right.set_position(("axes", 1.08))
        lines += price.plot(
            days, ordered["close_price"], color="tab:gray", linewidth=1, label="close price"
        )
        price.set_ylabel("close price", color="tab:gray")
        for axis in (ax, ratio, price):
            _plain(axis)
        ax.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize="small")
    figure.savefig(output)
    return figure
