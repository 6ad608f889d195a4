"""A detector's curves: precision and recall against the threshold, ROC and precision–recall."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from mnist_study.plots import plot_digits

__all__ = [
    "plot_curves",
    "plot_precision_recall_vs_threshold",
    "plot_threshold_views",
]


def plot_precision_recall_vs_threshold(
    precisions: np.ndarray,
    recalls: np.ndarray,
    thresholds: np.ndarray,
    chosen: float,
    ax: plt.Axes | None = None,
    chosen_name: str = "chosen threshold",
) -> plt.Axes:
    """Precision and recall as functions of the decision threshold, with one threshold marked.

    The marked threshold is named in the legend (``chosen_name`` and its value), and the
    precision and recall it gives are dotted across to the axis, as in the book's figure.
    """
    ax = ax if ax is not None else plt.gca()
    ax.plot(thresholds, precisions[:-1], "b--", label="Precision", linewidth=2)
    ax.plot(thresholds, recalls[:-1], "g-", label="Recall", linewidth=2)
    index = int(np.searchsorted(thresholds, chosen))
    ax.axvline(chosen, color="k", linestyle=":", label=f"{chosen_name}: {chosen:,.0f}")
    for value, colour in ((precisions[index], "b"), (recalls[index], "g")):
        ax.plot([chosen], [value], "o", color=colour)
        ax.plot([ax.get_xlim()[0], chosen], [value, value], ":", color=colour, linewidth=1)
    ax.set_xlabel("Decision threshold")
    ax.set_ylabel("Precision and recall")
    ax.xaxis.set_major_formatter(mpl.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return ax


def plot_curves(
    kind: str,
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    ax: plt.Axes,
    points: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """ROC (``kind="roc"``) or precision–recall (``"pr"``) curves of several models' scores.

    scikit-learn's Display classes draw them; the legend gives each area to four decimals (the
    Displays round to two, which shows 0.9983 as 1.00). ``points`` marks operating points, each
    named in the legend: ``{label: (x, y)}`` in the curve's coordinates.
    """
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    display_class = {"roc": RocCurveDisplay, "pr": PrecisionRecallDisplay}[kind]
    for index, (name, y_score) in enumerate(scores.items()):
        display = display_class.from_predictions(
            y_true,
            y_score,
            ax=ax,
            plot_chance_level=index == len(scores) - 1,
            curve_kwargs={"linewidth": 2, "linestyle": ["-", "--", ":", "-."][index % 4]},
        )
        area = display.roc_auc if kind == "roc" else display.average_precision
        display.line_.set_label(f"{name} ({'AUC' if kind == 'roc' else 'AP'} = {area:.4f})")
    for (label, (x, y)), marker in zip((points or {}).items(), "o*sD^v", strict=False):
        ax.plot([x], [y], marker, color="k", markersize=9 if marker == "*" else 6, label=label)
    ax.legend(loc="lower right" if kind == "roc" else "lower left")
    ax.grid(alpha=0.3)


def plot_threshold_views(
    table,
    images: np.ndarray,
    thresholds: Mapping[str, float],
    curve: tuple[np.ndarray, np.ndarray],
    fig: plt.Figure,
    per_strip: int = 5,
) -> None:
    """The threshold explorer's view at several thresholds, one column each (stage 2's figure).

    ``table`` is a ``threshold_explorer.ScoreTable``; ``curve`` the (precisions, recalls) of
    ``precision_recall_curve``. Each column: the point on the precision–recall curve, the
    measures and confusion counts at that threshold, the 5s just below it (missed) and the
    other digits just above it (called 5).
    """
    grid = fig.add_gridspec(4, len(thresholds), height_ratios=[2.2, 1.25, 0.8, 0.8])
    precisions, recalls = curve
    named = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
    for column, (name, threshold) in enumerate(thresholds.items()):
        measures, counts = table.measures(threshold), table.counts(threshold)
        ax = fig.add_subplot(grid[0, column])
        ax.plot(recalls, precisions, color="tab:blue", linewidth=2)
        ax.plot(measures["recall"], measures["precision"], "o", color="tab:red", markersize=9)
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", title=f"{name}\n{threshold:,.0f}")
        if column == 0:
            ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        text = fig.add_subplot(grid[1, column])
        text.set_axis_off()
        text.text(
            0.0,
            1.0,
            "\n".join(
                [
                    *(f"{name:<12}{measures[key]:>7.4f}" for key, name in named),
                    f"{'5s found':<12}{counts['tp']:>7,}",
                    f"{'5s missed':<12}{counts['fn']:>7,}",
                    f"{'non-5s as 5':<12}{counts['fp']:>7,}",
                ]
            ),
            va="top",
            fontsize=11,
            family="monospace",
        )
        missed, accepted = (table.order[p] for p in table.near(threshold, per_strip))
        for row, chosen, caption in (
            (2, missed, "5s just below: missed"),
            (3, accepted, "others just above: called 5"),
        ):
            strip = fig.add_subplot(grid[row, column])
            plot_digits(images[chosen], ax=strip, per_row=per_strip)
            strip.set_title(caption, fontsize=11)
