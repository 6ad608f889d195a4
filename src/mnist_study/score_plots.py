"""Scores as points with their 95% confidence intervals: the study's comparisons of models.

Points, not bars: the axes cannot start at zero (scores between 0.94 and 1), where a bar's length
would exaggerate the differences; a point is read by its position.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# The ground of a label that a line may run behind.
LABEL_GROUND = {"facecolor": "white", "edgecolor": "none", "pad": 0.5}

__all__ = [
    "plot_accuracy_points",
    "plot_model_choice",
    "plot_score_points",
    "plot_scores_against_goal",
]


def plot_score_points(
    table: pd.DataFrame,
    low: pd.DataFrame,
    high: pd.DataFrame,
    ax: plt.Axes | None = None,
    decimals: int = 4,
    xlabel: str = "score, with its 95% confidence interval",
) -> plt.Axes:
    """Scores as points with their interval bars: a row per measure (the index), a marker per model.

    ``low`` and ``high`` are shaped like ``table``. Points, not bars: a bar is read by its length,
    which misleads on an axis that does not start at zero; a point is read by its position.
    """
    ax = ax if ax is not None else plt.gca()
    positions = np.arange(len(table.index))[::-1].astype(float)
    spacing = 0.5 / max(1, len(table.columns))
    for offset, (column, marker) in enumerate(zip(table.columns, "os^D", strict=False)):
        y = positions + ((len(table.columns) - 1) / 2 - offset) * spacing
        values = table[column].to_numpy()
        errors = [values - low[column].to_numpy(), high[column].to_numpy() - values]
        ax.errorbar(values, y, xerr=errors, fmt=marker, capsize=3, markersize=6, label=str(column))
        for value, right, row in zip(values, high[column].to_numpy(), y, strict=True):
            ax.text(right, row, f"  {value:.{decimals}f}", va="center", fontsize=9)
    ax.set_yticks(positions, [str(name) for name in table.index])
    ax.set_ylim(positions.min() - 0.6, positions.max() + 0.6)
    left = np.floor(low.to_numpy().min() * 20) / 20
    ax.set_xlim(left, 1.0 + (1.0 - left) * 0.16)
    ax.set_xticks(np.round(np.arange(left, 1.0001, 0.05 if 1.0 - left <= 0.5 else 0.1), 2))
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower left", frameon=False)
    return ax


def plot_scores_against_goal(
    table: pd.DataFrame,
    low: pd.DataFrame,
    high: pd.DataFrame,
    ax: plt.Axes | None = None,
    goal: float | None = None,
    decimals: int | None = None,
    fontsize: float = 9,
) -> plt.Axes:
    """Scores as points with their intervals: one group per row of ``table``, one point per column.

    Points, not bars: on an axis that cannot start at zero (scores between 0.94 and 1), a bar's
    length would exaggerate the differences. ``low`` and ``high`` are shaped like ``table``;
    ``decimals`` writes each value beside its point.
    """
    ax = ax if ax is not None else plt.gca()
    n_series = len(table.columns)
    step = 0.6 / max(n_series, 1)
    positions = np.arange(len(table.index))
    markers = ["o", "s", "D", "^"]
    for offset, column in enumerate(table.columns):
        x = positions + (offset - (n_series - 1) / 2) * step
        values = table[column].to_numpy(dtype=float)
        errors = [values - low[column].to_numpy(dtype=float), high[column].to_numpy() - values]
        ax.errorbar(
            x,
            values,
            yerr=errors,
            fmt=markers[offset % len(markers)],
            capsize=3,
            markersize=5,
            label=str(column),
        )
        if decimals is not None:
            for x_point, value in zip(x, values, strict=True):
                ax.text(
                    x_point + 0.06, value, f"{value:.{decimals}f}", va="center", fontsize=fontsize
                )
    if goal is not None:
        ax.axhline(goal, color="crimson", linestyle="--", linewidth=1.2, label=f"goal {goal:.0%}")
    ax.set_xticks(positions, [str(i) for i in table.index])
    ax.set_xlim(-0.6, len(positions) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=fontsize, frameon=False)
    return ax


def plot_accuracy_points(
    scores: pd.DataFrame,
    chosen: str,
    ax: plt.Axes | None = None,
    goal: float | None = 0.97,
    xlabel: str = "test accuracy, with its 95% confidence interval",
    mark: str = "chosen",
) -> plt.Axes:
    """Each approach's accuracy as a point with its interval, one row each; ``chosen`` stands out.

    ``scores`` has one row per approach (the index names it) and the columns ``"accuracy"``,
    ``"low"``, ``"high"`` and ``"training images"``. Points, not bars: the axis starts near the
    lowest score, where a bar's length would exaggerate the differences. ``mark`` says, in
    brackets after its name, why ``chosen`` stands out.
    """
    ax = ax if ax is not None else plt.gca()
    positions = np.arange(len(scores))[::-1]
    accuracies = scores["accuracy"].to_numpy()
    errors = [accuracies - scores["low"].to_numpy(), scores["high"].to_numpy() - accuracies]
    for position, name, accuracy, low_error, high_error in zip(
        positions, scores.index, accuracies, *errors, strict=True
    ):
        colour = "tab:orange" if name == chosen else "tab:blue"
        ax.errorbar(
            accuracy,
            position,
            xerr=[[low_error], [high_error]],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=3,
            markersize=6,
        )
    low = np.floor((min(goal or 1.0, scores["low"].min()) - 0.005) * 100) / 100
    ax.set_xlim(low, 1.0)
    ax.set_ylim(-0.5, len(scores) - 0.2)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    columns = (scores.index, scores["training images"], accuracies, scores["high"])
    for position, name, images, accuracy, high in zip(positions, *columns, strict=True):
        label = f"{name}, {images:,} training images" + (f" ({mark})" if name == chosen else "")
        # On a white ground, so that the goal's line, drawn beneath, never crosses a label.
        ax.text(low, position + 0.22, label, va="bottom", fontsize=9, bbox=LABEL_GROUND)
        ax.text(high + 0.0005, position, f" {accuracy:.2%}", va="center", fontsize=9)
    if goal is not None:
        ax.axvline(goal, color="crimson", linestyle="--", linewidth=1)
        ax.text(goal, len(scores) - 0.35, f" {goal:.0%} goal", color="crimson", fontsize=9)
    ax.set_xlabel(xlabel)
    return ax


def plot_model_choice(
    equal: pd.DataFrame,
    full: pd.DataFrame,
    winner: str,
    labels: tuple[str, str],
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Each candidate's accuracy as a point with its 95 % interval: on equal terms, and in full.

    ``equal`` and ``full`` have one row per candidate (the index names it; ``full`` may lack some)
    and the columns ``"accuracy"``, ``"low"`` and ``"high"``. The candidates are drawn top to
    bottom in ``equal``'s order, ``winner`` in orange; ``labels`` name the two kinds of points in
    the legend, under the axes (say what each fold trained on). Points, not bars: the axis need
    not start at 0.
    """
    from matplotlib.lines import Line2D

    ax = ax if ax is not None else plt.gca()
    positions = dict(zip(equal.index, np.arange(len(equal))[::-1], strict=True))
    kinds = ((equal, "o", 0.14), (full, "D", -0.14))
    for frame, marker, offset in kinds:
        for name, row in frame.loc[[n for n in equal.index if n in frame.index]].iterrows():
            colour = "tab:orange" if name == winner else "tab:blue"
            y = positions[name] + offset
            ax.errorbar(
                row["accuracy"],
                y,
                xerr=[[row["accuracy"] - row["low"]], [row["high"] - row["accuracy"]]],
                fmt=marker,
                color=colour,
                markerfacecolor=colour if marker == "o" else "white",
                capsize=3,
            )
            ax.text(row["high"], y, f"  {row['accuracy']:.2%}", va="center", fontsize=10)
    for name in equal.index.difference(full.index, sort=False):
        y = positions[name] + kinds[1][2]
        ax.text(equal.loc[name, "high"], y, "  not run on all images", va="center", fontsize=10)
    ax.set_yticks(
        list(positions.values()),
        [f"{name}\n(wins by the rule)" if name == winner else name for name in positions],
    )
    ax.set_ylim(-0.6, len(equal) - 0.4)
    low = min(equal["low"].min(), full["low"].min() if len(full) else 1.0)
    ax.set_xlim(low - 0.01, 1.0)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D(
            [], [], marker=marker, color="0.3", markerfacecolor="0.3" if marker == "o" else "white"
        )
        for _, marker, _ in kinds
    ]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, -0.16), frameon=False)
    return ax
