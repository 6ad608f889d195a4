"""The threshold explorer's numbers against scikit-learn's, at thresholds chosen to catch errors:
between scores, on a score, on tied scores, below every score and above every score; and its
still picture, as a notebook saves it."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)

from mnist_study.threshold_explorer import (
    HOW_TO_MOVE,
    ScoreTable,
    ThresholdExplorer,
    balanced_threshold,
    explorer_view,
)
from tools.execute import normalise_notebook


@pytest.fixture(scope="module")
def detector() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores with many ties (rounded to tens) and images: a small detector's outputs."""
    rng = np.random.default_rng(0)
    y_true = rng.random(3000) < 0.1
    y_scores = np.round(rng.normal(2000 * y_true - 1000, 1500) / 10) * 10
    images = rng.integers(0, 256, size=(3000, 784), dtype=np.uint8)
    return y_true, y_scores, images


def thresholds_to_try(y_scores: np.ndarray) -> list[float]:
    """The extremes, every kind of position, and the scores shared by the most images."""
    values, counts = np.unique(y_scores, return_counts=True)
    tied = values[np.argsort(counts, kind="stable")[-5:]]
    assert counts.max() > 3, "the fixture must have tied scores"
    return [
        values[0] - 1,
        values[0],
        values[0] + 0.5,
        -1000.0,
        0.0,
        0.5,
        3370.0194991439557,
        values[-1],
        values[-1] + 0.001,
        values[-1] + 1e6,
        *tied,
        *(tied + 5),
    ]


def sklearn_at(y_true: np.ndarray, y_scores: np.ndarray, threshold: float) -> dict:
    """scikit-learn's measures of the answers ``y_scores >= threshold``."""
    y_pred = y_scores >= threshold
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[False, True])
    return {
        "counts": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "precision": precision_score(y_true, y_pred, zero_division=0.0),
        "recall": recall_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred),
    }


def test_the_numbers_are_scikit_learns_at_every_kind_of_threshold(detector) -> None:
    y_true, y_scores, _ = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    for threshold in thresholds_to_try(y_scores):
        expected = sklearn_at(y_true, y_scores, threshold)
        assert table.counts(threshold) == expected["counts"], threshold
        measures = table.measures(threshold)
        for name in ("precision", "recall", "f1"):
            assert measures[name] == expected[name], (threshold, name)  # exactly, not nearly


def test_the_extremes_call_every_image_5_or_none(detector) -> None:
    y_true, y_scores, _ = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    everything = table.counts(y_scores.min())
    assert everything == {"tn": 0, "fp": int((~y_true).sum()), "fn": 0, "tp": int(y_true.sum())}
    assert table.measures(y_scores.min())["recall"] == 1.0
    nothing = table.counts(y_scores.max() + 1)
    assert nothing == {"tn": int((~y_true).sum()), "fp": 0, "fn": int(y_true.sum()), "tp": 0}
    assert table.measures(y_scores.max() + 1) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_a_threshold_on_tied_scores_calls_all_of_them_5(detector) -> None:
    y_true, y_scores, _ = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    values, counts = np.unique(y_scores, return_counts=True)
    tied = values[counts.argmax()]
    on, above = table.counts(tied), table.counts(np.nextafter(tied, np.inf))
    called = lambda c: c["tp"] + c["fp"]  # noqa: E731
    assert called(on) - called(above) == counts.max()


def test_the_strips_hold_the_images_just_past_the_threshold(detector) -> None:
    y_true, y_scores, _ = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    for threshold in thresholds_to_try(y_scores):
        missed, accepted = (table.order[p] for p in table.near(threshold, k=5))
        # nearest first: the 5s below from the highest score down, the others above from the lowest
        fives_below = np.flatnonzero(y_true & (y_scores < threshold))
        others_above = np.flatnonzero(~y_true & (y_scores >= threshold))
        assert list(y_scores[missed]) == sorted(y_scores[fives_below], reverse=True)[:5]
        assert list(y_scores[accepted]) == sorted(y_scores[others_above])[:5]
        assert y_true[missed].all() and not y_true[accepted].any()


def test_the_balanced_threshold_is_where_precision_and_recall_meet(detector) -> None:
    y_true, y_scores, _ = detector
    precisions, recalls, thresholds = precision_recall_curve(y_true, y_scores)
    chosen = balanced_threshold(precisions, recalls, thresholds)
    measures = ScoreTable.from_scores(y_true, y_scores).measures(chosen)
    gap = abs(measures["precision"] - measures["recall"])
    assert gap == np.abs(precisions[:-1] - recalls[:-1]).min()
    assert gap < 0.02
    assert chosen in y_scores


def test_what_the_widget_shows_is_the_numbers_and_their_texts(detector) -> None:
    y_true, y_scores, images = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    shown = explorer_view(table, images, 250.0, k=4)
    expected = sklearn_at(y_true, y_scores, 250.0)
    values = {m["name"]: m["value"] for m in shown["measures"]}
    texts = {m["name"]: m["text"] for m in shown["measures"]}
    assert values == {
        "precision": expected["precision"],
        "recall": expected["recall"],
        "F1": expected["f1"],
    }
    assert texts["precision"] == f"{expected['precision']:.4f}"
    assert {name: c["value"] for name, c in shown["counts"].items()} == expected["counts"]
    assert shown["counts"]["tn"]["text"] == f"{expected['counts']['tn']:,}"
    assert len(shown["missed"]) == len(shown["accepted"]) == 4
    missed, _ = table.near(250.0, k=4)
    assert shown["missed"][0]["pixels"] == images[table.order[missed[0]]].tolist()
    assert shown["threshold_text"] == "250"


def test_the_widget_answers_a_moved_slider(detector) -> None:
    y_true, y_scores, images = detector
    explorer = ThresholdExplorer(y_true, y_scores, images, presets={"zero": 0.0})
    assert explorer.shown["threshold"] == 0.0
    assert explorer.low <= y_scores.min() and explorer.high > y_scores.max()
    explorer.threshold = 1234.5
    expected = sklearn_at(y_true, y_scores, 1234.5)
    assert explorer.shown["threshold"] == 1234.5
    assert explorer.shown["measures"][1]["value"] == expected["recall"]
    assert explorer.presets == [{"label": "zero", "threshold": 0.0}]
    assert repr(explorer) == "ThresholdExplorer(threshold=1,234, images=3,000)"
    recalls = [point[0] for point in explorer.curve]
    assert recalls == sorted(recalls, reverse=True) and len(explorer.curve) <= 400


@pytest.mark.parametrize(
    ("y_true", "y_scores"),
    [([True], [np.nan]), ([True, False], [1.0]), ([], [])],
    ids=["not finite", "different lengths", "empty"],
)
def test_scores_that_cannot_be_explored_are_refused(y_true, y_scores) -> None:
    with pytest.raises(ValueError):
        ScoreTable.from_scores(np.array(y_true, dtype=bool), np.array(y_scores))


def saved_output(widget: object, folder: Path) -> dict:
    """The widget's output as IPython formats it and the notebook runner saves it."""
    data, metadata = DisplayFormatter().format(widget)
    output = nbformat.v4.new_output("execute_result", data, metadata=metadata, execution_count=1)
    cell = nbformat.v4.new_code_cell("explorer", execution_count=1, outputs=[output])
    normalise_notebook(nbformat.v4.new_notebook(cells=[cell]), folder / "saved.ipynb")
    return nbformat.read(folder / "saved.ipynb", as_version=4).cells[0].outputs[0].data


def test_the_saved_output_carries_a_still_picture_and_how_to_move_it(detector, tmp_path) -> None:
    """What GitHub shows, where the widget does not run: the still, as PNG, and one line."""
    y_true, y_scores, images = detector
    explorer = ThresholdExplorer(y_true, y_scores, images, presets={"zero": 0.0})
    data = saved_output(explorer, tmp_path)
    png = base64.b64decode(data["image/png"])
    assert png == explorer.still()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > image.width
        assert "Software" not in image.info
    assert data["text/plain"] == f"ThresholdExplorer(threshold=0, images=3,000). {HOW_TO_MOVE}"
    assert "\n" not in data["text/plain"] and "JupyterLab" in data["text/plain"]
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    assert len(png) < 200_000, "the notebook must stay well under 1 MB"


def test_the_still_follows_what_the_widget_shows(detector) -> None:
    """The same view gives the same bytes; another threshold or other images, other bytes."""
    y_true, y_scores, images = detector
    explorer = ThresholdExplorer(y_true, y_scores, images)
    at_zero = explorer.still()
    assert explorer.still() == at_zero
    explorer.threshold = 1234.5
    moved = explorer.still()
    assert moved != at_zero
    explorer.threshold = 0.0
    assert explorer.still() == at_zero
    assert ThresholdExplorer(y_true, y_scores, 255 - images).still() != at_zero


def test_the_still_is_the_same_bytes_in_another_process(detector, tmp_path) -> None:
    """A re-run of the notebook is a new process, with another hash seed and other defaults."""
    y_true, y_scores, images = detector
    np.savez(tmp_path / "detector.npz", y_true=y_true, y_scores=y_scores, images=images)
    script = (
        "import sys, numpy as np, matplotlib as mpl; "
        "from mnist_study.threshold_explorer import ThresholdExplorer; "
        "mpl.rcParams.update({'font.size': 30, 'savefig.dpi': 50}); "
        "d = np.load(sys.argv[1]); "
        "e = ThresholdExplorer(d['y_true'], d['y_scores'], d['images'], threshold=250.0); "
        "sys.stdout.buffer.write(e.still())"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": "src"}
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "detector.npz")],
        capture_output=True,
        check=True,
        env=environment,
        cwd=Path(__file__).parents[1],
    )
    assert run.stdout == ThresholdExplorer(y_true, y_scores, images, threshold=250.0).still()
