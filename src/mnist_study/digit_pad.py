"""The drawing widget: draw a digit in JupyterLab, and the study's models read it as you draw.

The widget is an anywidget (a small JavaScript module and style sheet in ``static/``, no build
step): the browser draws the strokes and sends them here when one ends; ``answer`` prepares the
drawing as MNIST's digits were (``drawing.prepare``) and asks the stage-1 detector and the
ten-class model, and the widget shows the prepared image, the detector's answer and the
probabilities. Where widgets do not run (GitHub, nbviewer), its saved output shows ``still``: a
picture of the same view.
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
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier

from mnist_study import drawing, figures, plots
from mnist_study.cache import fit
from mnist_study.widget_still import ShowsStill

__all__ = ["DigitPad", "Readers", "answer", "fit_readers"]

STATIC = Path(__file__).parent / "static"
# Model ids numbered within the kernel, instead of random ones, so that an executed notebook
# showing the widget is the same from one run to the next.
MODEL_NUMBERS = itertools.count(1)
# What the still picture says under itself, and the saved output's text says.
HOW_TO_DRAW = "Run this notebook in JupyterLab (`make lab`) to draw a digit."


@dataclass(frozen=True)
class Readers:
    """The two models that read a drawing: a 5-detector and a ten-class classifier."""

    detector: BaseEstimator
    classifier: BaseEstimator


def fit_readers(X_train: np.ndarray, y_train: np.ndarray) -> Readers:
    """The stage-1 SGD 5-detector and the stage-5 random forest, as fitted there (disk cache).

    The forest, grown on every core, answers one drawing at a time faster on one.
    """
    detector = fit(SGDClassifier(random_state=42), X_train, y_train == "5")
    classifier = fit(RandomForestClassifier(random_state=42, n_jobs=-1), X_train, y_train)
    return Readers(detector, classifier.set_params(n_jobs=None))


def answer(readers: Readers, strokes: list) -> dict[str, Any]:
    """What the widget shows for ``strokes``: the prepared image and the models' answers.

    Keys: ``prepared`` (784 grey levels, or none), ``message`` (a sentence for the reader),
    ``detector`` ("5", "not 5" or ""), ``probabilities`` (ten, or none).
    """
    nothing: dict[str, Any] = {"prepared": [], "detector": "", "probabilities": []}
    try:
        canvas = drawing.rasterize(strokes)
    except (TypeError, ValueError):
        return {**nothing, "message": "The drawing could not be read: press Clear and draw again."}
    box = drawing.ink_box(canvas)
    if box is None:
        return {**nothing, "message": "Draw a digit in the box, as large as the box allows."}
    if max(side.stop - side.start for side in box) < drawing.TOO_SMALL:
        return {**nothing, "message": "That is a dot, not a digit: draw it larger."}
    digit = drawing.prepare(canvas)
    X = digit[np.newaxis].astype(float)
    is_5 = bool(readers.detector.predict(X)[0])
    probabilities = readers.classifier.predict_proba(X)[0]
    best = int(np.argmax(probabilities))
    label = readers.classifier.classes_[best]
    return {
        "prepared": digit.tolist(),
        "detector": "5" if is_5 else "not 5",
        "probabilities": [round(float(p), 4) for p in probabilities],
        "message": f"The forest reads a {label}, with confidence {probabilities[best]:.0%}.",
    }


class DigitPad(ShowsStill, anywidget.AnyWidget):
    """A canvas to draw a digit on, the 28 × 28 image the models receive, and their answers."""

    how_to = HOW_TO_DRAW

    _esm = STATIC / "digit_pad.js"
    _css = STATIC / "digit_pad.css"

    size = traitlets.Int(drawing.CANVAS_SIZE).tag(sync=True)
    pen = traitlets.Int(drawing.STROKE_WIDTH).tag(sync=True)
    strokes = traitlets.List([]).tag(sync=True)
    prepared = traitlets.List([]).tag(sync=True)
    detector = traitlets.Unicode("").tag(sync=True)
    probabilities = traitlets.List([]).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, readers: Readers, **kwargs: Any) -> None:
        self.readers = readers
        kwargs.setdefault("model_id", f"mnist-study-digit-pad-{next(MODEL_NUMBERS)}")
        super().__init__(**kwargs)
        self.show(answer(readers, self.strokes))

    def __repr__(self) -> str:
        """A repr without the object's address, so that a notebook's output is reproducible."""
        return f"DigitPad(strokes={len(self.strokes)}, detector={self.detector!r})"

    def show(self, shown: dict[str, Any]) -> None:
        """Set what the widget shows, in one message to the browser."""
        with self.hold_sync():
            for name, value in shown.items():
                setattr(self, name, value)

    def still(self) -> bytes:
        """What the widget shows now as a PNG, the same bytes from one run to the next."""
        try:
            canvas = drawing.rasterize(self.strokes, self.size, self.pen)
        except (TypeError, ValueError):  # the widget shows such strokes as nothing drawn
            canvas = np.zeros((self.size, self.size), np.uint8)
        prepared = np.reshape(self.prepared or [0] * drawing.SIDE**2, (drawing.SIDE,) * 2)
        answer = {"5": "Yes: 5", "not 5": "No: not 5"}.get(self.detector)
        with mpl.rc_context():
            mpl.rcdefaults()
            figures.use_study_style()
            fig = Figure(figsize=(8.0, 3.2), layout="constrained")
            drawn, seen, bars = fig.subplots(1, 3, width_ratios=[1, 1, 1.25])
            for ax, image, title in (
                (drawn, canvas, "the drawing"),
                (seen, prepared, f"what the models see ({drawing.SIDE} × {drawing.SIDE})"),
            ):
                ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                plots.frame_image(ax)
                ax.set_title(title)
            seen.set_xlabel(f"Is it a 5? {answer}" if answer else "")
            plot_probabilities(bars, self.probabilities)
            fig.suptitle(self.message)
            fig.supxlabel(HOW_TO_DRAW.replace("`", ""), fontsize=9, color="0.35")
            png = io.BytesIO()
            fig.savefig(png, format="png", metadata=figures.PNG_METADATA)
        return png.getvalue()

    @traitlets.observe("strokes")
    def read(self, change: dict[str, Any]) -> None:
        """Answer a new drawing (a stroke ended, or Clear was pressed)."""
        self.show(answer(self.readers, change["new"]))


def plot_probabilities(ax: mpl.axes.Axes, probabilities: list[float]) -> None:
    """The forest's ten probabilities as bars, labelled in percent as the widget shows them."""
    digits = np.arange(10)
    ax.barh(digits, probabilities or np.zeros(10), color="tab:blue")
    ax.set(xlim=(0, 1.15), xticks=[], yticks=digits, title="the forest's probabilities")
    ax.invert_yaxis()
    for digit, p in zip(digits, probabilities, strict=False):
        ax.text(p + 0.02, digit, f"{round(100 * p)}%", va="center", fontsize=9)
