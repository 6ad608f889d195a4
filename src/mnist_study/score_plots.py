"""Scores as points with their 95% confidence intervals: the study's comparisons of models.

Points, not bars: the axes cannot start at zero (scores between 0.94 and 1), where a bar's length
would exaggerate the differences; a point is read by its position.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.transforms import offset_copy

__all__ = ["plot_scores"]

MARKERS = "oDs^"  # one per column of scores; the diamond is drawn hollow
# The ground of a label that a line may run behind.
LABEL_GROUND = {"facecolor": "white", "edgecolor": "none", "pad": 0.5}


def plot_scores(
    table: pd.DataFrame,
    low: pd.DataFrame | np.ndarray,
    high: pd.DataFrame | np.ndarray,
    ax: plt.Axes | None = None,
    *,
    highlight: str | None = None,
    note: str = "",
    goal: float | None = None,
    value_format: str | None = "{:.2%}",
    missing: str = "",
    labels_above: bool = False,
) -> plt.Axes:
    """Scores as points with interval bars: a row per index entry, top down; a marker per column.

    ``low`` and ``high`` hold the intervals' ends, shaped like ``table``. The row ``highlight`` is
    drawn in orange and ``note`` follows its name; ``goal`` is a dashed line; ``value_format``
    writes each score beside its bar; a missing score (NaN) is said by ``missing``.
    ``labels_above`` writes the rows' names above their points (long names), not beside the axis.
    """
    ax = ax if ax is not None else plt.gca()
    values, lows, highs = (np.asarray(frame, dtype=float) for frame in (table, low, high))
    rows = np.arange(len(table))[::-1].astype(float)
    offsets = (np.arange(len(table.columns))[::-1] - (len(table.columns) - 1) / 2) * 0.28
    for j, (offset, marker) in enumerate(zip(offsets, MARKERS, strict=False)):
        for i, (y, name) in enumerate(zip(rows + offset, table.index, strict=True)):
            value, lo, hi = values[i, j], lows[i, j], highs[i, j]
            if np.isnan(value):
                ax.text(np.nanmax(highs[i]), y, f"  {missing}", va="center", fontsize=10)
                continue
            colour = "tab:orange" if name == highlight else "tab:blue"
            face = "white" if marker == "D" else colour
            bar = [[value - lo], [hi - value]]
            ax.errorbar(value, y, xerr=bar, fmt=marker, color=colour, mfc=face, capsize=3)
            if value_format:
                ax.text(hi, y, f"  {value_format.format(value)}", va="center", fontsize=10)
    names = [f"{n} ({note})" if n == highlight and note else f"{n}" for n in table.index]
    left = np.floor((min(goal or 1.0, np.nanmin(lows)) - 0.005) * 100) / 100
    ax.set_xlim(left, 1.0)
    if labels_above:
        for y, name in zip(rows + offsets.max(), names, strict=True):
            ax.text(left, y + 0.2, name, va="bottom", fontsize=10, bbox=LABEL_GROUND)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
    else:
        ax.set_yticks(rows, [name.replace(" (", "\n(") for name in names])
    ax.set_ylim(-0.6, len(table) - 0.4 + (0.3 if labels_above else 0))
    ax.grid(axis="x", alpha=0.3)
    if goal is not None:
        ax.axvline(goal, color="crimson", linestyle="--", linewidth=1, zorder=1)
        ax.text(goal, ax.get_ylim()[1], f" {goal:.0%} goal", color="crimson", va="top", fontsize=9)
    if len(table.columns) > 1:
        handles = [
            Line2D([], [], marker=m, color="0.3", mfc="white" if m == "D" else "0.3")
            for m in MARKERS[: len(table.columns)]
        ]
        # Under the axis and its label, at a fixed distance whatever the axes' height.
        under = offset_copy(ax.transAxes, fig=ax.figure, y=-34, units="points")
        ax.legend(
            handles,
            table.columns,
            loc="upper left",
            bbox_to_anchor=(0, 0),
            bbox_transform=under,
            frameon=False,
        )
    return ax
