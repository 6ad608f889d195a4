"""Figures of the study, built on scikit-learn's Display classes, and the one README exporter."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = [
    "PNG_METADATA",
    "plot_confusion_matrices",
    "plot_digits",
    "plot_error_grid",
    "plot_precision_recall_vs_threshold",
    "plot_score_bars",
    "save_readme_figure",
    "use_study_style",
]

# No software version, date or path in the files, so a re-run writes the same bytes.
PNG_METADATA = {"Software": None}
README_DPI = 120


def use_study_style() -> None:
    """Consistent, deterministic figure defaults for notebooks and exported PNGs."""
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": README_DPI,
            "savefig.bbox": "tight",
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "mnist-study",
        }
    )


def save_readme_figure(fig: plt.Figure, name: str, figure_dir: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as ``figure_dir/name`` (PNG, fixed metadata), atomically; return the path."""
    if not name.endswith(".png"):
        raise ValueError(f"README figures are PNG files; got {name!r}")
    directory = Path(figure_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        fig.savefig(temporary, format="png", metadata=PNG_METADATA)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def plot_digits(
    images: np.ndarray,
    ax: plt.Axes | None = None,
    per_row: int = 10,
    labels: Sequence[str] | None = None,
) -> plt.Axes:
    """Draw flattened 28×28 images as one grid of tiles (optionally titled with ``labels``)."""
    ax = ax if ax is not None else plt.gca()
    images = np.asarray(images).reshape(-1, 28, 28)
    n_rows = max(1, -(-len(images) // per_row))
    canvas = np.zeros((n_rows * 29 - 1, per_row * 29 - 1))
    for index, image in enumerate(images):
        row, col = divmod(index, per_row)
        canvas[row * 29 : row * 29 + 28, col * 29 : col * 29 + 28] = image
    ax.imshow(canvas, cmap="binary", interpolation="nearest")
    ax.set_axis_off()
    if labels is not None:
        for index, label in enumerate(labels):
            row, col = divmod(index, per_row)
            ax.text(col * 29 + 1, row * 29 + 6, label, fontsize=7, color="tab:red")
    return ax


def plot_precision_recall_vs_threshold(
    precisions: np.ndarray,
    recalls: np.ndarray,
    thresholds: np.ndarray,
    chosen: float,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Precision and recall as functions of the decision threshold, with one threshold marked."""
    ax = ax if ax is not None else plt.gca()
    ax.plot(thresholds, precisions[:-1], "b--", label="Precision", linewidth=2)
    ax.plot(thresholds, recalls[:-1], "g-", label="Recall", linewidth=2)
    ax.axvline(chosen, color="k", linestyle=":", label=f"threshold = {chosen:,.0f}")
    ax.set_xlabel("Decision threshold")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left")
    return ax


def plot_score_bars(
    table: pd.DataFrame,
    ax: plt.Axes | None = None,
    goal: float | None = None,
    ylim: tuple[float, float] = (0.0, 1.0),
    decimals: int = 3,
    fontsize: float = 8,
) -> plt.Axes:
    """Grouped bars: one group per row of ``table``, one bar per column, values written on top."""
    ax = ax if ax is not None else plt.gca()
    n_bars = len(table.columns)
    width = 0.8 / n_bars
    positions = np.arange(len(table.index))
    for offset, column in enumerate(table.columns):
        x = positions + (offset - (n_bars - 1) / 2) * width
        bars = ax.bar(x, table[column], width, label=str(column))
        labels = [f"{value:.{decimals}f}" for value in table[column]]
        ax.bar_label(bars, labels=labels, fontsize=fontsize, padding=2)
    if goal is not None:
        ax.axhline(goal, color="crimson", linestyle="--", linewidth=1.2, label=f"goal {goal:.0%}")
    ax.set_xticks(positions, [str(i) for i in table.index])
    ax.set_ylim(*ylim)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_confusion_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, axes: Sequence[plt.Axes]
) -> None:
    """Three views of one confusion matrix: counts, row-normalised, and errors only."""
    from sklearn.metrics import ConfusionMatrixDisplay

    common = {"colorbar": False, "cmap": "Blues"}
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=axes[0], **common)
    axes[0].set_title("Counts")
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, ax=axes[1], normalize="true", values_format=".0%", **common
    )
    axes[1].set_title("Share of each true digit (rows sum to 100 %)")
    weights = (np.asarray(y_true) != np.asarray(y_pred)).astype(float)
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        ax=axes[2],
        normalize="true",
        sample_weight=weights,
        values_format=".0%",
        **common,
    )
    axes[2].set_title("Errors only: share of each digit's errors")
    for ax in axes:
        ax.spines[:].set_visible(False)


def plot_error_grid(
    X: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    pair: tuple[str, str],
    axes: np.ndarray,
    per_block: int = 25,
) -> None:
    """A 2×2 grid of images for two digits a, b: rows the true digit, columns the prediction."""
    for row, actual in enumerate(pair):
        for col, predicted in enumerate(pair):
            chosen = X[(y_true == actual) & (y_pred == predicted)][:per_block]
            ax = axes[row, col]
            plot_digits(chosen, ax=ax, per_row=5)
            ax.set_title(f"true {actual}, predicted {predicted} ({len(chosen)} shown)")
