"""Stages 6 and 7's library against scikit-learn and scipy."""

from unittest import mock

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, KNeighborsTransformer
from threadpoolctl import threadpool_limits

from mnist_study import cache, features, knn_search, multilabel


def slanted_bar(slant: float) -> np.ndarray:
    """A bar from row 6 to 21 whose column moves ``slant`` pixels right per row down (flattened)."""
    image = np.zeros((28, 28))
    for row in range(6, 22):
        col = round(14 + slant * (row - 14))
        image[row, col - 1 : col + 2] = 255
    return image.reshape(1, -1)


def test_shifts_are_scipys_and_augmentation_appends_one_copy_per_shift(fixture_arrays) -> None:
    """A shift moves the pixels and fills with zeros, as scipy's; the copies follow the images."""
    digits, labels = fixture_arrays["X_train"][:300], fixture_arrays["y_train"][:300]
    for dx, dy in (*features.ONE_PIXEL_SHIFTS, *features.TWO_PIXEL_SHIFTS, (1, 1), (2, -2)):
        expected = [ndimage.shift(image.reshape(28, 28), [dy, dx]).ravel() for image in digits]
        np.testing.assert_array_equal(features.shift_images(digits, dx, dy), expected)
    X_augmented, y_augmented = features.augment_with_shifts(digits, labels)
    assert X_augmented.shape == (1500, 784) and X_augmented.dtype == np.uint8
    np.testing.assert_array_equal(X_augmented[:300], digits)
    np.testing.assert_array_equal(X_augmented[300:600], features.shift_images(digits, -1, 0))
    np.testing.assert_array_equal(y_augmented, np.tile(labels, 5))


def test_deskew_straightens_and_centres_a_slanted_bar_and_real_digits(fixture_arrays) -> None:
    """The moments measure slant and centre; deskewed digits stand upright in the middle."""
    digits = fixture_arrays["X_train"][:300]
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
    for whole, batched in zip((centres, slants), features.image_moments(digits, 7), strict=True):
        np.testing.assert_allclose(whole, batched, rtol=1e-12)


def test_direction_features_point_along_the_gradient_in_double_precision(fixture_arrays):
    """A vertical bar's edges point left and right; in float32, rounding moved support vectors."""
    digits = fixture_arrays["X_train"][:300]
    planes = features.direction_features(slanted_bar(0.0)).reshape(8, 7, 7)
    energy = planes.sum(axis=(1, 2))
    # Direction 0 points right (+x) and 4 left; 2 and 6 are down and up, which a bar has little of.
    assert planes.min() >= 0 and min(energy[0], energy[4]) > 3 * max(energy[2], energy[6])
    assert energy[0] == pytest.approx(energy[4], rel=0.05)
    assert features.direction_features(np.zeros((2, 784), np.uint8)).max() == 0
    with threadpool_limits(1):
        one_thread = features.direction_features(digits)
    with threadpool_limits(2):
        two_threads = features.direction_features(digits, batch=7)
    assert one_thread.shape == (300, 392) and one_thread.dtype == np.float64
    np.testing.assert_allclose(one_thread, two_threads, rtol=1e-12, atol=1e-15)


def test_knn_on_float_pixels_and_on_shared_neighbours_is_the_plain_knn(fixture_arrays) -> None:
    """Float pixels change only the search path; the shared search queries once per fold, cached."""
    X, y, X_test = fixture_arrays["X_train"], fixture_arrays["y_train"], fixture_arrays["X_test"]
    on_uint8 = KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, y)
    on_float = features.on_float_pixels(KNeighborsClassifier(n_neighbors=4, weights="distance"))
    float_test = features.float_pixels(X_test)
    assert float_test.dtype == np.float64
    neighbours = on_uint8.kneighbors(X_test), on_float.fit(X, y)[-1].kneighbors(float_test)
    np.testing.assert_array_equal(*neighbours)
    np.testing.assert_array_equal(cache.predict(on_float, X_test), on_uint8.predict(X_test))
    X, y, transform = X[:1000].astype(np.float64), y[:1000], KNeighborsTransformer.transform
    with mock.patch.object(KNeighborsTransformer, "transform", autospec=True) as spy:
        spy.side_effect = transform
        shared, again = knn_search.neighbour_search(X, y), knn_search.neighbour_search(X, y)
    queries = [len(call.args[1]) for call in spy.call_args_list]
    assert queries == [len(X) // knn_search.FOLDS] * knn_search.FOLDS, "the second from the cache"
    plain = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5).fit(X, y)
    for key in ["params", *(f"split{fold}_test_score" for fold in range(knn_search.FOLDS))]:
        np.testing.assert_array_equal(plain.cv_results_[key], shared.cv_results_[key])
    assert (plain.best_params_, plain.best_score_) == (shared.best_params_, shared.best_score_)
    assert again.best_params_ == shared.best_params_


def test_f1_from_precision_and_recall_is_the_harmonic_mean() -> None:
    Y_true = np.array([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=bool)
    Y_pred = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    # label 0: TP 3, FP 2, FN 1 -> P 3/5, R 3/4; label 1: TP 2, FP 1, FN 1 -> P 2/3, R 2/3
    harmonic = multilabel.f1_from_precision_and_recall(Y_true, Y_pred)
    np.testing.assert_allclose(harmonic, [2 * 0.6 * 0.75 / (0.6 + 0.75), 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(harmonic, f1_score(Y_true, Y_pred, average=None), rtol=1e-12)


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
    vote = multilabel.most_common_level(levels)
    assert levels.shape == (40, 5, 784) and vote.dtype == np.uint8
    np.testing.assert_array_equal(vote, classifier.predict(noisy_test))
    np.testing.assert_array_equal(levels.mean(axis=1), regressor.predict(noisy_test))
    # one image, 5 neighbours, 4 pixels: a clear majority, a 2-2-1 tie, all different, all equal
    levels = np.array([[[9, 7, 20, 3], [9, 7, 150, 3], [9, 0, 0, 3], [1, 0, 90, 3], [1, 5, 99, 3]]])
    np.testing.assert_array_equal(multilabel.most_common_level(levels), [[9, 0, 0, 3]])
    np.testing.assert_array_equal(multilabel.level_repeats(levels), [[True, True, False, True]])
