"""The threshold explorer's numbers against scikit-learn's, and its still picture."""

import base64
import io

import nbformat
import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image
from sklearn import metrics

from mnist_study import threshold_explorer
from mnist_study.threshold_explorer import ScoreTable, ThresholdExplorer
from tools.execute import normalise_notebook


@pytest.fixture(scope="module")
def detector() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores with many ties (rounded to tens) and images: a small detector's outputs."""
    rng = np.random.default_rng(0)
    y_true = rng.random(3000) < 0.1
    y_scores = np.round(rng.normal(2000 * y_true - 1000, 1500) / 10) * 10
    images = rng.integers(0, 256, size=(3000, 784), dtype=np.uint8)
    return y_true, y_scores, images


def sklearn_at(y_true: np.ndarray, y_scores: np.ndarray, threshold: float) -> dict:
    """scikit-learn's measures of the answers ``y_scores >= threshold``."""
    y_pred = y_scores >= threshold
    (tn, fp), (fn, tp) = metrics.confusion_matrix(y_true, y_pred, labels=[False, True])
    return {
        "counts": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "precision": metrics.precision_score(y_true, y_pred, zero_division=0.0),
        "recall": metrics.recall_score(y_true, y_pred),
        "f1": metrics.f1_score(y_true, y_pred),
    }


def test_the_numbers_and_strips_are_right_at_every_kind_of_threshold(detector) -> None:
    """Counts and measures exactly scikit-learn's; the strips the nearest 5s and others."""
    y_true, y_scores, _ = detector
    table = ScoreTable.from_scores(y_true, y_scores)
    values, counts = np.unique(y_scores, return_counts=True)
    tied = values[np.argsort(counts, kind="stable")[-5:]]
    assert counts.max() > 3, "the fixture must have tied scores"
    extremes = [values[0] - 1, values[0], values[-1], values[-1] + 0.001, values[-1] + 1e6]
    for threshold in [*extremes, values[0] + 0.5, -1000.0, 0.0, 0.5, *tied, *(tied + 5)]:
        expected = sklearn_at(y_true, y_scores, threshold)
        assert table.counts(threshold) == expected.pop("counts"), threshold
        assert table.measures(threshold) == expected, threshold  # exactly, not nearly
        missed, accepted = (table.order[p] for p in table.near(threshold, k=5))
        fives_below = y_scores[y_true & (y_scores < threshold)]
        others_above = y_scores[~y_true & (y_scores >= threshold)]
        assert list(y_scores[missed]) == sorted(fives_below, reverse=True)[:5]
        assert list(y_scores[accepted]) == sorted(others_above)[:5]
        assert y_true[missed].all() and not y_true[accepted].any()
    precisions, recalls, thresholds = metrics.precision_recall_curve(y_true, y_scores)
    chosen = threshold_explorer.balanced_threshold(precisions, recalls, thresholds)
    gap = abs(table.measures(chosen)["precision"] - table.measures(chosen)["recall"])
    assert gap == np.abs(precisions[:-1] - recalls[:-1]).min() and gap < 0.02 and chosen in y_scores
    for y_true, y_scores in ([True], [np.nan]), ([True, False], [1.0]), ([], []):
        with pytest.raises(ValueError):  # not finite, of different lengths, empty
            ScoreTable.from_scores(np.array(y_true, dtype=bool), np.array(y_scores))


def test_the_widget_shows_its_numbers_and_saves_a_still_of_its_view(detector, tmp_path) -> None:
    """The slider spans the scores; moved, it shows scikit-learn's numbers; GitHub gets a PNG."""
    y_true, y_scores, images = detector
    explorer = ThresholdExplorer(y_true, y_scores, images, presets={"zero": 0.0})
    assert explorer.presets == [{"label": "zero", "threshold": 0.0}]
    assert explorer.low <= y_scores.min() and explorer.high > y_scores.max()
    recalls = [point[0] for point in explorer.curve]
    assert recalls == sorted(recalls, reverse=True) and len(explorer.curve) <= 400
    data, metadata = DisplayFormatter().format(explorer)
    output = nbformat.v4.new_output("execute_result", data, metadata=metadata, execution_count=1)
    cell = nbformat.v4.new_code_cell("explorer", execution_count=1, outputs=[output])
    normalise_notebook(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "saved.ipynb")
    data = nbformat.read(tmp_path / "saved.ipynb", as_version=4).cells[0].outputs[0].data
    at_zero = base64.b64decode(data["image/png"])
    assert at_zero == explorer.still() and len(at_zero) < 200_000, "well under 1 MB a notebook"
    with Image.open(io.BytesIO(at_zero)) as image:
        assert image.format == "PNG" and image.height > image.width > 400
        assert "Software" not in image.info
    how = threshold_explorer.HOW_TO_MOVE
    assert data["text/plain"] == f"ThresholdExplorer(threshold=0, images=3,000). {how}"
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    explorer.threshold = 1234.5
    shown, expected = explorer.shown, sklearn_at(y_true, y_scores, 1234.5)
    assert repr(explorer) == "ThresholdExplorer(threshold=1,234, images=3,000)"
    assert (shown["threshold"], shown["threshold_text"]) == (1234.5, "1,234")
    values = [expected[key] for key in ("precision", "recall", "f1")]
    assert [m["name"] for m in shown["measures"]] == ["precision", "recall", "F1"]
    assert [(m["value"], m["text"]) for m in shown["measures"]] == [(v, f"{v:.4f}") for v in values]
    counts = expected["counts"].items()
    assert shown["counts"] == {name: {"value": v, "text": f"{v:,}"} for name, v in counts}
    missed, _ = explorer.table.near(1234.5)
    assert [s["pixels"] for s in shown["missed"]] == images[explorer.table.order[missed]].tolist()
    assert explorer.still() != at_zero
    explorer.threshold = 0.0
    assert explorer.still() == at_zero
