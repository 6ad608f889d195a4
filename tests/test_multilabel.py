"""Stage 7 helpers: the book's F1, and the denoising vote rebuilt from the neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from mnist_study import multilabel


def test_f1_from_precision_and_recall_is_the_harmonic_mean() -> None:
    Y_true = np.array([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=bool)
    Y_pred = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    # label 0: TP 3, FP 2, FN 1 -> P 3/5, R 3/4; label 1: TP 2, FP 1, FN 1 -> P 2/3, R 2/3
    harmonic = multilabel.f1_from_precision_and_recall(Y_true, Y_pred)
    np.testing.assert_allclose(harmonic, [2 * 0.6 * 0.75 / (0.6 + 0.75), 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(harmonic, f1_score(Y_true, Y_pred, average=None), rtol=1e-12)


def test_the_vote_is_the_most_common_level_and_the_lowest_on_a_tie() -> None:
    # one image, 5 neighbours, 4 pixels: a clear majority, a 2-2-1 tie, all different, all equal
    levels = np.array(
        [[[9, 7, 200, 3], [9, 7, 150, 3], [9, 0, 0, 3], [1, 0, 90, 3], [1, 5, 255, 3]]]
    )
    np.testing.assert_array_equal(multilabel.most_common_level(levels), [[9, 0, 0, 3]])
    np.testing.assert_array_equal(multilabel.level_repeats(levels), [[True, True, False, True]])
    assert multilabel.most_common_level(levels.astype(np.uint8)).dtype == np.uint8


@pytest.mark.filterwarnings("ignore:The number of unique classes is greater than 50%")
@pytest.mark.parametrize("pixels", [np.uint16, np.float64], ids=["integer", "float"])
def test_the_rebuilt_vote_and_mean_are_the_models_outputs(fixture_arrays, pixels) -> None:
    """The notebook's check of the cause, on the fixture: both scikit-learn paths, same vote."""
    X_train, X_test = fixture_arrays["X_train"][:300], fixture_arrays["X_test"][:40]
    rng = np.random.RandomState(0)
    noisy_train = (X_train + rng.randint(0, 100, X_train.shape)).astype(pixels)
    noisy_test = (X_test + rng.randint(0, 100, X_test.shape)).astype(pixels)
    classifier = KNeighborsClassifier().fit(noisy_train, X_train)
    regressor = KNeighborsRegressor().fit(noisy_train, X_train)
    levels = X_train[regressor.kneighbors(noisy_test, return_distance=False)]
    assert levels.shape == (40, 5, 784)
    vote = multilabel.most_common_level(levels)
    np.testing.assert_array_equal(vote, classifier.predict(noisy_test))
    np.testing.assert_array_equal(levels.mean(axis=1), regressor.predict(noisy_test))
