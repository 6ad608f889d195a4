"""Stage 2's threshold explorer in JupyterLab (on the fixture), its slider moved with the mouse:
every number it shows is scikit-learn's at the threshold the page says the kernel used."""

from collections.abc import Callable

import numpy as np
import pytest
from playwright.sync_api import Page
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)
from sklearn.model_selection import cross_val_predict

from mnist_study.data import load_mnist
from tests.browser.driver import explorer_shown, wait_for_threshold
from tools.paths import FIXTURE_FILE

FIXTURE_SGD = "ignore::sklearn.exceptions.ConvergenceWarning"  # 2,000 images: it stops early
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(FIXTURE_SGD)]

NOTEBOOK = "notebooks/02_precision_recall_tradeoff.ipynb"


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    """The fixture's labels (is it a 5?) and the SGD's cross-validated scores, as notebook 02's."""
    X_train, _, y_train, _ = load_mnist(fixture=FIXTURE_FILE)
    y_train_5 = y_train == "5"
    y_scores = cross_val_predict(
        SGDClassifier(random_state=42), X_train, y_train_5, cv=3, method="decision_function"
    )
    return y_train_5, y_scores


def check_against_sklearn(shown: dict, y_true: np.ndarray, y_scores: np.ndarray) -> float:
    """Assert that every number ``shown`` is scikit-learn's at the threshold shown; return it."""
    threshold = float(shown["threshold"])
    y_pred = y_scores >= threshold
    expected = {
        "precision": precision_score(y_true, y_pred, zero_division=0.0),
        "recall": recall_score(y_true, y_pred),
        "F1": f1_score(y_true, y_pred),
    }
    measures = {m["name"]: m for m in shown["measures"]}
    assert set(measures) == set(expected)
    for name, value in expected.items():
        assert float(measures[name]["value"]) == value, (name, threshold)  # to the last digit
        assert measures[name]["text"] == f"{value:.4f}", (name, threshold)
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[False, True])
    counts = {c["name"]: c for c in shown["counts"]}
    for name, value in {"tn": tn, "fp": fp, "fn": fn, "tp": tp}.items():
        assert int(counts[name]["value"]) == value and counts[name]["text"] == f"{value:,}"
    assert shown["threshold_text"] == f"{threshold:,.0f}"
    # the strips: 5s scored just below the threshold, other digits just above it
    below = sorted(y_scores[y_true & ~y_pred], reverse=True)[: len(shown["missed"])]
    above = sorted(y_scores[~y_true & y_pred])[: len(shown["accepted"])]
    assert shown["missed"] == [f"{score:,.0f}" for score in below]
    assert shown["accepted"] == [f"{score:,.0f}" for score in above]
    return threshold


def move_slider(page: Page, fraction: float) -> None:
    """Click the slider's track at ``fraction`` of its width, as a person moves it there."""
    slider = page.locator(".threshold-explorer-slider").first
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None, "the explorer's slider is not on the page"
    page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)


def test_the_slider_and_the_presets_show_scikit_learns_numbers(
    page: Page, run_all: Callable[[str], None], scores
) -> None:
    y_true, y_scores = scores
    run_all(NOTEBOOK)
    page.locator(".threshold-explorer-measure").first.wait_for(timeout=60_000)
    shown = explorer_shown(page)
    assert check_against_sklearn(shown, y_true, y_scores) == 0.0, "it opens at the default"
    assert len(shown["missed"]) == len(shown["accepted"]) == 8

    seen = [shown["threshold"]]
    for fraction in (0.8, 0.3, 0.55, 0.999, 0.001):
        move_slider(page, fraction)
        wait_for_threshold(page, seen[-1])
        shown = explorer_shown(page)
        seen.append(shown["threshold"])
        check_against_sklearn(shown, y_true, y_scores)
    thresholds = [float(value) for value in seen]
    assert len(set(thresholds)) == len(thresholds), "every move gave a new threshold"
    assert thresholds[4] > y_scores.max() - 0.01 * np.ptp(y_scores), "the right end: few 5s"
    assert thresholds[5] < np.quantile(y_scores, 0.01), "the left end: almost everything a 5"
    precisions, _, thresholds = precision_recall_curve(y_true, y_scores)
    page.locator(".threshold-explorer-preset", has_text="90% precision").first.click()
    wait_for_threshold(page, seen[-1])  # a preset jumps to the notebook's threshold
    shown = explorer_shown(page)
    assert float(shown["threshold"]) == thresholds[(precisions >= 0.90).argmax()]
    check_against_sklearn(shown, y_true, y_scores)
    assert float({m["name"]: m for m in shown["measures"]}["precision"]["value"]) >= 0.9
