"""Stage 6's features: shifts, deskewing, stroke directions, and how scikit-learn uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from mnist_study import cache, features


def canvas() -> np.ndarray:
    """A blank 28×28 image as float64."""
    return np.zeros((28, 28))


def slanted_bar(slant: float) -> np.ndarray:
    """A bar from row 6 to 21 whose column moves ``slant`` pixels right per row down (flattened)."""
    image = canvas()
    for row in range(6, 22):
        col = round(14 + slant * (row - 14))
        image[row, col - 1 : col + 2] = 255
    return image.reshape(1, -1)


def test_shift_moves_a_pixel_and_fills_with_zeros() -> None:
    image = canvas()
    image[10, 20] = 200
    image[0, 0] = 50
    shifted = features.shift_images(image.reshape(1, -1), dx=2, dy=-1).reshape(28, 28)
    assert shifted[9, 22] == 200
    assert shifted.sum() == 200  # the corner pixel left the image; nothing wrapped around


def test_shift_equals_scipy_shift_on_real_digits(fixture_arrays: dict[str, np.ndarray]) -> None:
    images = fixture_arrays["X_train"][:20]
    for dx, dy in (*features.ONE_PIXEL_SHIFTS, *features.TWO_PIXEL_SHIFTS, (1, 1), (2, -2)):
        expected = [
            ndimage.shift(image.reshape(28, 28), [dy, dx], cval=0, mode="constant").ravel()
            for image in images
        ]
        np.testing.assert_array_equal(features.shift_images(images, dx, dy), expected)


def test_augmentation_appends_one_shifted_copy_per_shift(
    fixture_arrays: dict[str, np.ndarray],
) -> None:
    X, y = fixture_arrays["X_train"][:30], fixture_arrays["y_train"][:30]
    X_augmented, y_augmented = features.augment_with_shifts(X, y)
    assert X_augmented.shape == (150, 784)
    assert X_augmented.dtype == np.uint8
    np.testing.assert_array_equal(X_augmented[:30], X)
    np.testing.assert_array_equal(X_augmented[30:60], features.shift_images(X, -1, 0))
    np.testing.assert_array_equal(y_augmented, np.tile(y, 5))


def test_moments_measure_centre_and_slant() -> None:
    centres, slants = features.image_moments(np.vstack([slanted_bar(0.5), np.zeros((1, 784))]))
    assert slants[0] == pytest.approx(0.5, abs=0.03)
    assert centres[0] == pytest.approx([13.5, 13.75], abs=0.3)
    assert slants[1] == 0  # a blank image has no slant (and no division by zero)


def test_deskew_straightens_and_centres_a_slanted_bar() -> None:
    straightened = features.deskew(slanted_bar(0.5))
    centres, slants = features.image_moments(straightened)
    assert straightened.dtype == np.uint8
    assert abs(slants[0]) < 0.02
    assert centres[0] == pytest.approx([14, 14], abs=0.2)


def test_deskew_reduces_the_slant_of_real_digits(fixture_arrays: dict[str, np.ndarray]) -> None:
    images = fixture_arrays["X_train"][:200]
    _, before = features.image_moments(images)
    _, after = features.image_moments(features.deskew(images))
    assert np.abs(after).mean() < 0.1 * np.abs(before).mean()


def test_direction_features_of_a_vertical_bar_point_left_and_right() -> None:
    planes = features.direction_features(slanted_bar(0.0)).reshape(8, 7, 7)
    energy = planes.sum(axis=(1, 2))
    assert planes.min() >= 0
    # Direction 0 points right (+x) and 4 left; 2 and 6 are down and up, which a bar has little of.
    assert min(energy[0], energy[4]) > 3 * max(energy[2], energy[6])
    assert energy[0] == pytest.approx(energy[4], rel=0.05)


def test_direction_features_are_batch_independent(fixture_arrays: dict[str, np.ndarray]) -> None:
    images = fixture_arrays["X_train"][:50]
    whole = features.direction_features(images)
    batched = features.direction_features(images, batch=7)
    assert whole.shape == (50, 392)
    np.testing.assert_allclose(whole, batched, rtol=1e-12)
    assert features.direction_features(np.zeros((2, 784), np.uint8)).max() == 0


def test_direction_features_are_double_precision_whatever_the_blas_threads(
    fixture_arrays: dict[str, np.ndarray],
) -> None:
    """In single precision, machine-dependent rounding changed the SVM's support vectors."""
    images = fixture_arrays["X_train"][:500]
    with threadpool_limits(1):
        one_thread = features.direction_features(images)
    with threadpool_limits(2):
        two_threads = features.direction_features(images)
    assert one_thread.dtype == np.float64
    np.testing.assert_allclose(one_thread, two_threads, rtol=1e-12, atol=1e-15)


def test_image_moments_are_batch_independent(fixture_arrays: dict[str, np.ndarray]) -> None:
    images = fixture_arrays["X_train"][:50]
    centres, slants = features.image_moments(images)
    batched_centres, batched_slants = features.image_moments(images, batch=7)
    np.testing.assert_allclose(centres, batched_centres, rtol=1e-12)
    np.testing.assert_allclose(slants, batched_slants, rtol=1e-12)
    assert centres.shape == (50, 2)


def test_deskewing_centres_the_digits(fixture_arrays: dict[str, np.ndarray]) -> None:
    """Why stage 6's shifted copies of deskewed digits lie where no deskewed digit does."""
    images = fixture_arrays["X_train"][:300]
    before, _ = features.image_moments(images)
    after, _ = features.image_moments(features.deskew(images))
    assert before.std(axis=0).min() > 0.2
    assert after.std(axis=0).max() < 0.05
    shifted, _ = features.image_moments(features.shift_images(features.deskew(images), 1, 0))
    np.testing.assert_allclose(np.median(shifted[:, 1] - after[:, 1]), 1.0, atol=0.05)


def test_direction_svc_beats_pixel_svc_on_the_fixture(
    fixture_arrays: dict[str, np.ndarray],
) -> None:
    """The two pipelines of notebook 06, written as the notebook writes them."""
    X_train = features.deskew(fixture_arrays["X_train"])
    X_test = features.deskew(fixture_arrays["X_test"])
    y_train, y_test = fixture_arrays["y_train"], fixture_arrays["y_test"]
    pixels = make_pipeline(
        FunctionTransformer(features.unit_pixels), PCA(40, random_state=42), SVC(gamma=0.04, C=10)
    )
    directions = make_pipeline(
        FunctionTransformer(features.direction_features),
        PCA(40, random_state=42),
        SVC(gamma=0.06, C=10),
    )
    pixel_score = pixels.fit(X_train, y_train).score(X_test, y_test)
    assert directions.fit(X_train, y_train).score(X_test, y_test) > max(pixel_score, 0.95)


def test_virtual_support_vectors_are_shifted_copies_of_the_support_vectors(
    fixture_arrays: dict[str, np.ndarray],
) -> None:
    """Notebook 06's recipe: fit, take the support vectors, add their shifted copies, refit."""
    X, y = fixture_arrays["X_train"][:400], fixture_arrays["y_train"][:400]
    svc = SVC(gamma=1e-7).fit(X, y)
    support = svc.support_
    X_virtual, y_virtual = features.augment_with_shifts(X[support], y[support])
    assert len(X_virtual) == 5 * len(support)
    np.testing.assert_array_equal(X_virtual[: len(support)], X[support])
    refitted = clone(svc).fit(X_virtual, y_virtual)
    assert len(refitted.support_) > len(support)


def test_knn_on_float_pixels_finds_the_same_neighbours_as_on_uint8(
    fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The float64 copies of notebook 06 only change scikit-learn's search path, not its result."""
    X, y = fixture_arrays["X_train"], fixture_arrays["y_train"]
    X_test = fixture_arrays["X_test"]
    on_uint8 = KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, y)
    on_float = KNeighborsClassifier(n_neighbors=4, weights="distance")
    on_float.fit(X.astype(np.float64), y)
    distances, neighbours = on_uint8.kneighbors(X_test)
    float_distances, float_neighbours = on_float.kneighbors(X_test.astype(np.float64))
    np.testing.assert_array_equal(neighbours, float_neighbours)
    np.testing.assert_array_equal(distances, float_distances)
    predictions = cache.predict(on_float, X_test.astype(np.float64))
    np.testing.assert_array_equal(predictions, on_uint8.predict(X_test))
    pipeline = features.on_float_pixels(clone(on_float)).fit(X, y)
    np.testing.assert_array_equal(pipeline.predict(X_test), predictions)
    assert features.float_pixels(X[:2]).dtype == np.float64
