"""Stages 6 and 7's library against scikit-learn and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, KNeighborsTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from mnist_study import cache, features, knn_search, multilabel


@pytest.fixture
def digits(fixture_arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The fixture's first 300 training images."""
    return fixture_arrays["X_train"][:300]


def slanted_bar(slant: float) -> np.ndarray:
    """A bar from row 6 to 21 whose column moves ``slant`` pixels right per row down (flattened)."""
    image = np.zeros((28, 28))
    for row in range(6, 22):
        col = round(14 + slant * (row - 14))
        image[row, col - 1 : col + 2] = 255
    return image.reshape(1, -1)


def test_shifts_are_scipys_and_augmentation_appends_one_copy_per_shift(digits, fixture_arrays):
    """A shift moves the pixels and fills with zeros, as scipy's; the copies follow the images."""
    for dx, dy in (*features.ONE_PIXEL_SHIFTS, *features.TWO_PIXEL_SHIFTS, (1, 1), (2, -2)):
        expected = [ndimage.shift(image.reshape(28, 28), [dy, dx]).ravel() for image in digits]
        np.testing.assert_array_equal(features.shift_images(digits, dx, dy), expected)
    X_augmented, y_augmented = features.augment_with_shifts(digits, fixture_arrays["y_train"][:300])
    assert X_augmented.shape == (1500, 784) and X_augmented.dtype == np.uint8
    np.testing.assert_array_equal(X_augmented[:300], digits)
    np.testing.assert_array_equal(X_augmented[300:600], features.shift_images(digits, -1, 0))
    np.testing.assert_array_equal(y_augmented, np.tile(fixture_arrays["y_train"][:300], 5))


def test_deskew_straightens_and_centres_a_slanted_bar_and_real_digits(digits) -> None:
    """The moments measure slant and centre; deskewed digits stand upright in the middle."""
    centres, slants = features.image_moments(np.vstack([slanted_bar(0.5), np.zeros((1, 784))]))
    assert slants[0] == pytest.approx(0.5, abs=0.03) and slants[1] == 0, "a blank has no slant"
    assert centres[0] == pytest.approx([13.5, 13.75], abs=0.3)
    straightened = features.deskew(slanted_bar(0.5))
    centres, slants = features.image_moments(straightened)
    assert straightened.dtype == np.uint8 and abs(slants[0]) < 0.02
    assert centres[0] == pytest.approx([14, 14], abs=0.2)
    centres, slants = features.image_moments(digits)
    deskewed_centres, deskewed_slants = features.image_moments(features.deskew(digits))
    assert np.abs(deskewed_slants).mean() < 0.1 * np.abs(slants).mean()
    assert centres.std(axis=0).min() > 0.2 and deskewed_centres.std(axis=0).max() < 0.05
    shifted, _ = features.image_moments(features.shift_images(features.deskew(digits), 1, 0))
    assert np.median(shifted[:, 1] - deskewed_centres[:, 1]) == pytest.approx(1.0, abs=0.05)


def test_direction_features_of_a_vertical_bar_point_left_and_right() -> None:
    planes = features.direction_features(slanted_bar(0.0)).reshape(8, 7, 7)
    energy = planes.sum(axis=(1, 2))
    assert planes.min() >= 0
    # Direction 0 points right (+x) and 4 left; 2 and 6 are down and up, which a bar has little of.
    assert min(energy[0], energy[4]) > 3 * max(energy[2], energy[6])
    assert energy[0] == pytest.approx(energy[4], rel=0.05)
    assert features.direction_features(np.zeros((2, 784), np.uint8)).max() == 0


def test_features_are_double_precision_whatever_the_batch_and_the_blas_threads(digits) -> None:
    """In single precision, machine-dependent rounding changed the SVM's support vectors."""
    with threadpool_limits(1):
        one_thread = features.direction_features(digits)
    with threadpool_limits(2):
        two_threads = features.direction_features(digits, batch=7)
    assert one_thread.shape == (300, 392) and one_thread.dtype == np.float64
    np.testing.assert_allclose(one_thread, two_threads, rtol=1e-12, atol=1e-15)
    for whole, batched in zip(
        features.image_moments(digits), features.image_moments(digits, 7), strict=True
    ):
        np.testing.assert_allclose(whole, batched, rtol=1e-12)


def test_direction_svc_beats_pixel_svc_on_the_fixture(fixture_arrays) -> None:
    """The two pipelines of notebook 06, written as the notebook writes them."""
    X_train, X_test = (features.deskew(fixture_arrays[f"X_{part}"]) for part in ("train", "test"))
    y_train, y_test = fixture_arrays["y_train"], fixture_arrays["y_test"]

    def score(transform, gamma: float) -> float:
        steps = FunctionTransformer(transform), PCA(40, random_state=42), SVC(gamma=gamma, C=10)
        return make_pipeline(*steps).fit(X_train, y_train).score(X_test, y_test)

    assert score(features.direction_features, 0.06) > max(score(features.unit_pixels, 0.04), 0.95)


def test_knn_on_float_pixels_finds_the_same_neighbours_as_on_uint8(fixture_arrays) -> None:
    """The float64 copies of notebook 06 only change scikit-learn's search path, not its result."""
    X, y, X_test = fixture_arrays["X_train"], fixture_arrays["y_train"], fixture_arrays["X_test"]
    on_uint8 = KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, y)
    on_float = features.on_float_pixels(KNeighborsClassifier(n_neighbors=4, weights="distance"))
    on_float.fit(X, y)
    float_test = features.float_pixels(X_test)
    assert float_test.dtype == np.float64
    neighbours = on_uint8.kneighbors(X_test), on_float[-1].kneighbors(float_test)
    np.testing.assert_array_equal(*neighbours)
    np.testing.assert_array_equal(cache.predict(on_float, X_test), on_uint8.predict(X_test))


def test_shared_neighbours_give_the_plain_searchs_scores_once_per_fold(
    fixture_arrays, monkeypatch
) -> None:
    """Notebook 06's fold scores and choice, one neighbour query per fold, then the cache."""
    X, y = fixture_arrays["X_train"][:1000], fixture_arrays["y_train"][:1000]
    calls: list[int] = []
    transform = KNeighborsTransformer.transform
    monkeypatch.setattr(
        KNeighborsTransformer,
        "transform",
        lambda self, X: calls.append(len(X)) or transform(self, X),
    )
    shared = knn_search.neighbour_search(X, y)
    assert calls == [len(X) // knn_search.FOLDS] * knn_search.FOLDS
    assert knn_search.neighbour_search(X, y).best_params_ == shared.best_params_
    assert len(calls) == knn_search.FOLDS, "the second call is read from the cache"
    plain = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5)
    plain.fit(X.astype(np.float64), y)
    for key in ["params", *(f"split{fold}_test_score" for fold in range(knn_search.FOLDS))]:
        np.testing.assert_array_equal(plain.cv_results_[key], shared.cv_results_[key])
    assert (plain.best_params_, plain.best_score_) == (shared.best_params_, shared.best_score_)


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
