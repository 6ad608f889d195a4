"""Stage 7 helpers: the book's labels and noise, cached multilabel/multioutput fits, the scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from mnist_study import features, models, multilabel, plots
from mnist_study.data import load_mnist


@pytest.fixture
def small_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """300 training and 60 test images of the fixture, with an empty cache of their own."""
    monkeypatch.setenv("MNIST_STUDY_CACHE_DIR", str(tmp_path / "cache"))
    models.memory.cache_clear()
    from conftest import FIXTURE_PATH

    X_train, X_test, y_train, y_test = load_mnist(fixture=FIXTURE_PATH)
    yield X_train[:300], X_test[:60], y_train[:300], y_test[:60]
    models.memory.cache_clear()


def test_targets_are_large_and_odd_for_string_and_integer_labels() -> None:
    expected = [
        [False, False],  # 0
        [False, True],  # 1
        [False, False],  # 2
        [False, True],  # 3
        [False, False],  # 4
        [False, True],  # 5
        [False, False],  # 6
        [True, True],  # 7
        [True, False],  # 8
        [True, True],  # 9
    ]
    strings = np.array(list("0123456789"))
    assert multilabel.multilabel_targets(strings).tolist() == expected
    assert multilabel.multilabel_targets(np.arange(10, dtype=np.uint8)).tolist() == expected
    # the book's own expression on string labels gives the same "large" column
    np.testing.assert_array_equal(multilabel.multilabel_targets(strings)[:, 0], strings >= "7")


def test_noise_is_the_books_seeded_recipe_without_touching_global_state(
    fixture_arrays: dict[str, np.ndarray],
) -> None:
    X_train, X_test = fixture_arrays["X_train"][:50], fixture_arrays["X_test"][:20]
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    noisy_train, noisy_test = multilabel.noisy_copies(X_train, X_test)
    np.testing.assert_array_equal(np.random.get_state()[1], before)

    np.random.seed(42)  # the book: seed, noise for the training images, then for the test images
    book_train = X_train + np.random.randint(0, 100, (len(X_train), 784))
    book_test = X_test + np.random.randint(0, 100, (len(X_test), 784))
    np.testing.assert_array_equal(noisy_train, book_train)
    np.testing.assert_array_equal(noisy_test, book_test)
    assert noisy_train.dtype == np.uint16  # no wrap-around: pixels reach 255 + 99
    assert noisy_train.max() > 255
    assert ((noisy_train >= X_train) & (noisy_train <= X_train.astype(int) + 99)).all()


def test_cross_validated_multilabel_predictions_use_the_books_folds_and_are_cached(
    small_data, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _, y, _ = small_data
    Y = multilabel.multilabel_targets(y)
    calls = []
    real = models.cross_val_predict

    def counting(*args, **kwargs):
        calls.append(kwargs["cv"])
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "cross_val_predict", counting)
    knn = features.on_float_pixels(KNeighborsClassifier())
    first = models.cross_val_output(knn, X, Y, cv=3)
    again = models.cross_val_output(knn, X, Y, cv=3)
    assert calls == [3], "the second call is served from the cache"
    np.testing.assert_array_equal(first, again)
    # multilabel targets: scikit-learn's cv=3 means plain, unshuffled KFold, as in the book
    expected = cross_val_predict(KNeighborsClassifier(), X, Y, cv=KFold(3))
    np.testing.assert_array_equal(first, expected)
    models.cross_val_output(features.on_float_pixels(KNeighborsClassifier(3)), X, Y, cv=3)
    assert len(calls) == 2, "other parameters are another result"


# 300 images with up to 256 grey levels each as classes: scikit-learn asks whether it is regression
@pytest.mark.filterwarnings("ignore:The number of unique classes is greater than 50%")
def test_batched_prediction_equals_one_call(small_data) -> None:
    X_train, X_test, _, _ = small_data
    noisy_train, noisy_test = multilabel.noisy_copies(X_train, X_test)
    knn = KNeighborsClassifier()
    expected = knn.fit(noisy_train.astype(float), X_train).predict(noisy_test.astype(float))
    batched = models.fit_predict(
        features.on_float_pixels(knn), noisy_train, X_train, noisy_test, batch=7
    )
    assert batched.shape == (60, 784)
    assert batched.dtype == np.uint8
    np.testing.assert_array_equal(batched, expected)


def test_f1_from_precision_and_recall_is_the_harmonic_mean() -> None:
    Y_true = np.array([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=bool)
    Y_pred = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    # label 0: TP 3, FP 2, FN 1 -> P 3/5, R 3/4; label 1: TP 2, FP 1, FN 1 -> P 2/3, R 2/3
    expected = [2 * 0.6 * 0.75 / (0.6 + 0.75), 2 / 3]
    np.testing.assert_allclose(
        multilabel.f1_from_precision_and_recall(Y_true, Y_pred), expected, rtol=1e-15
    )
    np.testing.assert_allclose(
        multilabel.f1_from_precision_and_recall(Y_true, Y_pred),
        f1_score(Y_true, Y_pred, average=None),
        rtol=1e-12,
    )


def test_squared_error_does_not_wrap_around_on_unsigned_pixels() -> None:
    images = np.array([[0, 255, 10], [5, 5, 5]], dtype=np.uint8)
    targets = np.array([[255, 0, 10], [5, 5, 5]], dtype=np.uint8)
    np.testing.assert_array_equal(
        multilabel.squared_error_per_image(images, targets), [2 * 255**2 / 3, 0]
    )


def test_image_rows_share_one_grey_scale(fixture_arrays: dict[str, np.ndarray]) -> None:
    originals = fixture_arrays["X_test"][:6]
    noisy, _ = multilabel.noisy_copies(originals, originals[:1])
    fig = plots.plot_image_rows({"noisy": noisy, "originals": originals, "blank": 0 * noisy})
    try:
        axes = fig.axes
        assert [ax.get_title(loc="left") for ax in axes] == ["noisy", "originals", "blank"]
        for ax in axes:
            assert ax.images[0].get_clim() == (0, 255)
            assert ax.images[0].get_array().max() <= 255
    finally:
        plt.close(fig)
