"""Stage 7: the book's way of computing F1, and what a vote of neighbours does to grey levels.

The notebook writes the book's labels, noise and models itself; this module holds the two
computations it checks them with: F1 as the book's version of scikit-learn computed it, and the
denoising classifier's vote rebuilt from the grey levels of each pixel's nearest neighbours.
"""

from __future__ import annotations

import numpy as np

__all__ = ["f1_from_precision_and_recall", "level_repeats", "most_common_level"]


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


def votes(levels: np.ndarray) -> np.ndarray:
    """How many neighbours share each neighbour's level: ``(n, k, pixels)`` as ``levels``."""
    levels = np.asarray(levels)
    counts = np.zeros(levels.shape, np.uint8)
    for neighbour in range(levels.shape[1]):
        counts += levels == levels[:, neighbour : neighbour + 1]
    return counts


def level_repeats(levels: np.ndarray) -> np.ndarray:
    """Whether some grey level occurs more than once among a pixel's neighbours: ``(n, pixels)``.

    ``levels`` is ``(n, k, pixels)``: for each image, the level of every pixel in its ``k``
    nearest training images.
    """
    return (votes(levels) > 1).any(axis=1)


def most_common_level(levels: np.ndarray) -> np.ndarray:
    """``KNeighborsClassifier``'s vote (uniform weights): the most common level, lowest on a tie.

    ``levels`` is ``(n, k, pixels)`` as for ``level_repeats``; the result is ``(n, pixels)``.
    """
    levels = np.asarray(levels)
    counts = votes(levels)
    most = counts.max(axis=1, keepdims=True)
    candidates = np.where(counts == most, levels.astype(np.int32), np.iinfo(np.int32).max)
    return candidates.min(axis=1).astype(levels.dtype)
