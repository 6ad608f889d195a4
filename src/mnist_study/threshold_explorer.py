"""The threshold explorer: move a 5-detector's decision threshold and watch the trade-off happen.

The numbers are computed here, with numpy, from the decision scores sorted once
(``ScoreTable``): at a threshold ``t`` the detector answers "5" for every image whose score is at
least ``t`` (``y_scores >= t``, the book's rule for a chosen threshold), so one binary search in
the sorted scores gives the four confusion counts, and precision, recall and F1 follow as
scikit-learn computes them (F1 from the counts, as ``f1_score`` does; a precision with no image
called "5" is 0, scikit-learn's value). The widget (``ThresholdExplorer``) is an anywidget, like
stage 8's drawing pad: its slider sends a threshold, Python answers with what to show. Where
widgets do not run (GitHub, nbviewer), its saved output shows ``still``: a picture of the same view.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import matplotlib as mpl
import numpy as np
import traitlets
from matplotlib.figure import Figure

from mnist_study import curve_plots, figures
from mnist_study.widget_still import ShowsStill

__all__ = [
    "STRIP",
    "ScoreTable",
    "ThresholdExplorer",
    "balanced_threshold",
    "explorer_view",
]

STATIC = Path(__file__).parent / "static"
# How many images each strip shows: the 5s just below the threshold, the non-5s just above it.
STRIP = 8
# Points kept of the precision-recall curve drawn by the widget (a picture, not a measurement).
CURVE_POINTS = 400
# Model ids numbered within the kernel (as the drawing pad's), so an executed notebook is stable.
MODEL_NUMBERS = itertools.count(1)
# What the still picture says under itself, and the saved output's text says.
HOW_TO_MOVE = "Run this notebook in JupyterLab (`make lab`) to move the threshold."


@dataclass(frozen=True)
class ScoreTable:
    """Decision scores sorted once, with what a threshold needs: the labels in that order."""

    scores: np.ndarray  # ascending
    order: np.ndarray  # the images' indices, in the order of ``scores``
    labels: np.ndarray  # is it a 5?, in the order of ``scores``
    positives_below: np.ndarray  # positives_below[i]: 5s among the i lowest scores

    @classmethod
    def from_scores(cls, y_true: np.ndarray, y_scores: np.ndarray) -> ScoreTable:
        """Sort ``y_scores`` (ties kept in the images' order) and count the 5s below each."""
        y_true = np.asarray(y_true, dtype=bool)
        y_scores = np.asarray(y_scores, dtype=float)
        if y_true.shape != y_scores.shape or y_scores.ndim != 1 or not len(y_scores):
            raise ValueError("y_true and y_scores must be two 1-d arrays of the same length")
        if not np.isfinite(y_scores).all():
            raise ValueError("the decision scores must be finite numbers")
        order = np.argsort(y_scores, kind="stable")
        labels = y_true[order]
        return cls(y_scores[order], order, labels, np.concatenate([[0], np.cumsum(labels)]))

    def counts(self, threshold: float) -> dict[str, int]:
        """The confusion counts of the answers ``y_scores >= threshold``: tn, fp, fn, tp."""
        below = int(np.searchsorted(self.scores, threshold, side="left"))
        positives = int(self.positives_below[-1])
        fn = int(self.positives_below[below])
        tn = below - fn
        tp = positives - fn
        fp = len(self.scores) - below - tp
        return {"tn": tn, "fp": fp, "fn": fn, "tp": tp}

    def measures(self, threshold: float) -> dict[str, float]:
        """Precision, recall and F1 at ``threshold``, equal to scikit-learn's to the last digit."""
        c = self.counts(threshold)
        called, positives = c["tp"] + c["fp"], c["tp"] + c["fn"]
        precision = c["tp"] / called if called else 0.0
        recall = c["tp"] / positives if positives else 0.0
        wrong_or_found = 2 * c["tp"] + c["fp"] + c["fn"]
        f1 = 2 * c["tp"] / wrong_or_found if wrong_or_found else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    def near(self, threshold: float, k: int = STRIP) -> tuple[np.ndarray, np.ndarray]:
        """The images just past ``threshold``: the ``k`` 5s scored highest below it (missed,
        nearest first) and the ``k`` non-5s scored lowest at or above it (accepted, nearest
        first), as positions in the sorted scores."""
        below = int(np.searchsorted(self.scores, threshold, side="left"))
        missed = np.flatnonzero(self.labels[:below])[::-1][:k]
        accepted = below + np.flatnonzero(~self.labels[below:])[:k]
        return missed, accepted


def balanced_threshold(precisions: np.ndarray, recalls: np.ndarray, thresholds: np.ndarray):
    """The threshold of ``precision_recall_curve`` where precision and recall are closest.

    The lowest such threshold if several are equally close (``argmin`` takes the first).
    """
    return thresholds[np.abs(precisions[:-1] - recalls[:-1]).argmin()]


def curve_points(table: ScoreTable, points: int = CURVE_POINTS) -> list[list[float]]:
    """About ``points`` (recall, precision) points of the curve, for the widget to draw."""
    thresholds = np.unique(table.scores)
    picked = thresholds[np.unique(np.linspace(0, len(thresholds) - 1, points).round().astype(int))]
    shown = [table.measures(t) for t in picked]
    return [[round(m["recall"], 4), round(m["precision"], 4)] for m in shown]


def explorer_view(
    table: ScoreTable, images: np.ndarray, threshold: float, k: int = STRIP
) -> dict[str, Any]:
    """What the widget shows at ``threshold``: the numbers, their texts, and the image strips.

    Keys: ``threshold`` (the number used) and ``threshold_text``; ``measures`` (precision,
    recall, F1: name, value, text); ``counts`` (tn, fp, fn, tp: value and text); ``missed`` and
    ``accepted`` (each a list of images, 784 grey levels, with their scores' texts); ``message``.
    """
    threshold = float(threshold)
    measures = table.measures(threshold)
    counts = table.counts(threshold)
    missed, accepted = table.near(threshold, k)
    message = (
        f"{counts['tp'] + counts['fp']:,} images called 5: {counts['tp']:,} of the "
        f"{counts['tp'] + counts['fn']:,} fives, and {counts['fp']:,} other digits."
    )
    if not counts["tp"] + counts["fp"]:
        message = "No image is called 5: precision has nothing to measure (scikit-learn gives 0)."

    def strip(positions: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"pixels": np.asarray(images[i]).ravel().tolist(), "score": f"{score:,.0f}"}
            for i, score in zip(table.order[positions], table.scores[positions], strict=True)
        ]

    return {
        "threshold": threshold,
        "threshold_text": f"{threshold:,.0f}",
        "measures": [
            {"name": name, "value": measures[key], "text": f"{measures[key]:.4f}"}
            for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
        ],
        "counts": {name: {"value": value, "text": f"{value:,}"} for name, value in counts.items()},
        "missed": strip(missed),
        "accepted": strip(accepted),
        "message": message,
    }


class ThresholdExplorer(ShowsStill, anywidget.AnyWidget):
    """A slider over a detector's decision scores, and what its threshold gives."""

    how_to = HOW_TO_MOVE

    _esm = STATIC / "threshold_explorer.js"
    _css = STATIC / "threshold_explorer.css"

    low = traitlets.Float(0.0).tag(sync=True)
    high = traitlets.Float(0.0).tag(sync=True)
    threshold = traitlets.Float(0.0).tag(sync=True)
    presets = traitlets.List([]).tag(sync=True)
    curve = traitlets.List([]).tag(sync=True)
    shown = traitlets.Dict({}).tag(sync=True)

    def __init__(
        self,
        y_true: np.ndarray,
        y_scores: np.ndarray,
        images: np.ndarray,
        presets: dict[str, float] | None = None,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.table = ScoreTable.from_scores(y_true, y_scores)
        self.images = images
        kwargs.setdefault("model_id", f"mnist-study-threshold-explorer-{next(MODEL_NUMBERS)}")
        super().__init__(
            low=float(np.floor(self.table.scores[0])),
            high=float(np.floor(self.table.scores[-1]) + 1),
            presets=[{"label": k, "threshold": float(v)} for k, v in (presets or {}).items()],
            curve=curve_points(self.table),
            **kwargs,
        )
        self.threshold = float(threshold)
        self.shown = explorer_view(self.table, self.images, self.threshold)

    def __repr__(self) -> str:
        """A repr without the object's address, so that a notebook's output is reproducible."""
        return (
            f"ThresholdExplorer(threshold={self.threshold:,.0f}, images={len(self.table.scores):,})"
        )

    def still(self) -> bytes:
        """What the widget shows now as a PNG, the same bytes from one run to the next."""
        named = [p["label"] for p in self.presets if p["threshold"] == self.threshold]
        recalls, precisions = np.array(self.curve).T
        with mpl.rc_context():
            mpl.rcdefaults()
            figures.use_study_style()
            fig = Figure(figsize=(4.4, 6.6), layout="constrained")
            views = {(named or ["threshold"])[0]: self.threshold}
            curve_plots.plot_threshold_views(
                self.table, self.images, views, (precisions, recalls), fig, per_strip=STRIP
            )
            fig.supxlabel(HOW_TO_MOVE.replace("`", ""), fontsize=9, color="0.35")
            png = io.BytesIO()
            fig.savefig(png, format="png", metadata=figures.PNG_METADATA)
        return png.getvalue()

    @traitlets.observe("threshold")
    def answer(self, change: dict[str, Any]) -> None:
        """Show what the new threshold gives."""
        self.shown = explorer_view(self.table, self.images, change["new"])
