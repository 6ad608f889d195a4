"""Stage 7: more than one label per image (multilabel), more than one output (multioutput).

The book's two labels for every digit (*large*: 7, 8 or 9; *odd*), its seeded noise recipe for
the denoising example, the book's way of computing F1, and the denoising error. Its figure is
drawn by ``plots.plot_image_rows``; intervals come from ``stats``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LABEL_NAMES",
    "NOISE_SEED",
    "PREDICT_BATCH",
    "f1_from_precision_and_recall",
    "multilabel_targets",
    "noisy_copies",
    "squared_error_per_image",
]

LABEL_NAMES = ("large (7, 8, 9)", "odd")
# The book's np.random.seed(42) before drawing the noise of the training, then the test images.
NOISE_SEED = 42
# Test images denoised at a time (in batches): a KNN with 784 outputs
# holds one array of class probabilities per output and per image, about 1 MB per image.
PREDICT_BATCH = 250


def multilabel_targets(y: np.ndarray) -> np.ndarray:
    """The book's two labels per digit label, as an ``(n, 2)`` boolean array: large, odd.

    Large means 7, 8 or 9 (the book's ``y_train >= '7'``); odd is ``digit % 2 == 1``. Labels may
    be the loader's strings ``'0'``…``'9'`` or integers.
    """
    digits = np.asarray(y).astype(np.int8)
    return np.c_[digits >= 7, digits % 2 == 1]


def noisy_copies(
    X_train: np.ndarray, X_test: np.ndarray, seed: int = NOISE_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """The book's noisy images: ``randint(0, 100)`` added to every pixel, training images first.

    Draws from ``RandomState(seed)``, the generator behind the book's ``np.random.seed(42)``
    followed by ``np.random.randint``, so the noise is the book's to the last pixel without
    touching NumPy's global state. Pixels of the result go up to 354: ``uint16`` holds them
    exactly in a quarter of the book's ``int64``.
    """
    rng = np.random.RandomState(seed)
    noisy = []
    for images in (X_train, X_test):
        noise = rng.randint(0, 100, (len(images), images.shape[1]))
        noisy.append((np.asarray(images, dtype=np.int64) + noise).astype(np.uint16))
    return noisy[0], noisy[1]


def f1_from_precision_and_recall(Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    """F1 of each label as the harmonic mean of its precision P and recall R, 2PR / (P + R).

    That is how scikit-learn computed F1 when the book was written; since version 1.4 it uses the
    counts directly, 2TP / (2TP + FP + FN), equal in exact arithmetic but not always in the last
    bit of a float. Both arrays are ``(n, n_labels)`` booleans; every label must have been both
    present and predicted (no division by zero here).
    """
    Y_true, Y_pred = np.asarray(Y_true, dtype=bool), np.asarray(Y_pred, dtype=bool)
    tp = (Y_true & Y_pred).sum(axis=0).astype(np.float64)
    precision = tp / Y_pred.sum(axis=0)
    recall = tp / Y_true.sum(axis=0)
    return 2 * precision * recall / (precision + recall)


def squared_error_per_image(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean squared pixel difference of each image from its target, in float64 (no wrap-around)."""
    difference = np.asarray(images, dtype=np.float64) - np.asarray(targets, dtype=np.float64)
    return (difference**2).mean(axis=1)
