"""Charts of stored histories with matplotlib (extra ``plot``); imported only by ``aiomoomoo plot``.

One panel per code: the short position as a filled area, days to cover (US) or the short ratio
(HK) on a second axis, and the close price on a third, all against the trading date.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["draw"]

# (short position, its measure, its label) per market, told apart by the frame's columns.
_SERIES = {
    "shares_short": ("days_to_cover", "days to cover", "shares short"),
    "aggregated_short": ("aggregated_short_ratio", "short ratio (%)", "aggregated short"),
}


def draw(frames: dict[str, pd.DataFrame], output: Path) -> None:
    """Draw ``frames`` (code -> `ShortInterestStore.history` frame) into the image ``output``;
    its suffix (``.png``, ``.svg``, ``.pdf``) picks the format."""
    figure = Figure(figsize=(11, 3.2 * len(frames)), layout="constrained")
    axes = figure.subplots(len(frames), 1, squeeze=False)[:, 0]
    for ax, (code, frame) in zip(axes, frames.items(), strict=True):
        position = "shares_short" if "shares_short" in frame.columns else "aggregated_short"
        measure, measure_label, position_label = _SERIES[position]
        ordered = frame.iloc[::-1]
        days = pd.to_datetime(ordered["timestamp_str"].astype(object), errors="coerce")
        ax.fill_between(
            days, ordered[position].astype("float64"), color="tab:blue", alpha=0.25, linewidth=0
        )
        ax.plot(days, ordered[position].astype("float64"), color="tab:blue", label=position_label)
        ax.set_ylabel(position_label, color="tab:blue")
        ax.set_title(code, loc="left", fontweight="bold")
        ratio = ax.twinx()
        ratio.plot(days, ordered[measure], color="tab:orange", label=measure_label)
        ratio.set_ylabel(measure_label, color="tab:orange")
        price = ax.twinx()
        price.spines.right.set_position(("axes", 1.08))
        price.plot(days, ordered["close_price"], color="tab:gray", linewidth=1, label="close")
        price.set_ylabel("close price", color="tab:gray")
        if not len(frame):
            ax.text(0.5, 0.5, "no rows stored", transform=ax.transAxes, ha="center")
    figure.savefig(output)
