"""The threshold explorer's numbers against scikit-learn's, at thresholds chosen to catch errors:
between scores, on a score, on tied scores, below every score and above every score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)

from mnist_study.threshold_explorer import (
    ScoreTable,
    ThresholdExplorer,
    balanced_threshold,
    explorer_view,
)


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
