"""Uncertainty of test scores and paired comparisons of two models on the same images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import precision_score, recall_score

__all__ = [
    "CONFIDENCE",
    "PairedComparison",
    "Proportion",
    "accuracy",
    "compare_paired",
    "cross_validation_interval",
    "f1_interval",
    "format_p",
    "holm",
    "macro_interval",
    "mean_interval",
    "paired_table",
    "proportion",
    "recall_at_precision",
    "roc_auc_interval",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``trials``, with the exact (Clopper–Pearson) 95 % confidence interval."""

    successes: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        """The observed proportion."""
        return self.successes / self.trials

    def __str__(self) -> str:
        return f"{self.value:.4f} (95% CI {self.low:.4f}–{self.high:.4f})"


def proportion(successes: int, trials: int) -> Proportion:
    """A proportion and its exact binomial confidence interval (scipy's ``binomtest``)."""
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(CONFIDENCE)
    return Proportion(int(successes), int(trials), interval.low, interval.high)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> Proportion:
    """Test accuracy as a proportion of correctly read images, with its confidence interval."""
    correct = np.asarray(y_true) == np.asarray(y_pred)
    return proportion(int(correct.sum()), correct.size)


def macro_interval(
    y_true: np.ndarray, y_pred: np.ndarray, score: str, n_resamples: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval (percentile, seeded) of macro ``"precision"`` or ``"recall"``.

    The test images are resampled with replacement, each with its true and predicted digit.
    """
    if score not in ("precision", "recall"):
        raise ValueError(f"score must be 'precision' or 'recall', not {score!r}")
    classes, true_codes = np.unique(np.asarray(y_true), return_inverse=True)
    pred_codes = np.searchsorted(classes, np.asarray(y_pred))

    def macro_score(true: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
        per_class = []
        for k in range(len(classes)):
            hits = ((true == k) & (pred == k)).sum(axis=axis)
            per_class.append(hits / ((pred if score == "precision" else true) == k).sum(axis=axis))
        return np.mean(per_class, axis=0)

    result = stats.bootstrap(
        (true_codes, pred_codes),
        macro_score,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        batch=200,
        method="percentile",
        confidence_level=CONFIDENCE,
        rng=np.random.default_rng(42),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_interval(values: np.ndarray) -> tuple[float, float]:
    """95 % Student-t confidence interval of the mean of independent ``values`` (one per image)."""
    interval = stats.ttest_1samp(np.asarray(values, dtype=np.float64), 0.0).confidence_interval(
        CONFIDENCE
    )
    return float(interval.low), float(interval.high)


def cross_validation_interval(
    fold_scores: Sequence[float], train_size: int, test_size: int
) -> tuple[float, float]:
    """95 % interval of a cross-validated mean score, from its folds' spread (Nadeau–Bengio).

    The folds' training sets overlap, so their scores vary less than independent ones would: the
    corrected resampled t interval (Nadeau and Bengio, 2003, *Machine Learning* 52) widens the
    variance of the mean from s²/k to (1/k + test_size/train_size)·s², with k − 1 degrees of
    freedom. Written here because neither scipy nor statsmodels offers the correction.
    """
    scores = np.asarray(fold_scores, dtype=np.float64)
    k = scores.size
    error = np.sqrt((1 / k + test_size / train_size) * scores.var(ddof=1))
    half = stats.t.ppf((1 + CONFIDENCE) / 2, k - 1) * error
    return float(scores.mean() - half), float(scores.mean() + half)


@dataclass(frozen=True)
class PairedComparison:
    """Two models read the same images: who gets right what the other misses, and McNemar's p."""

    only_a: int
    only_b: int
    p_value: float

    @property
    def significant(self) -> bool:
        """Whether the difference is unlikely to be noise, at the 5 % level."""
        return self.p_value < 1 - CONFIDENCE


def compare_paired(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> PairedComparison:
    """McNemar's exact test: a two-sided binomial test on the images only one model gets right."""
    y_true = np.asarray(y_true)
    right_a = np.asarray(pred_a) == y_true
    right_b = np.asarray(pred_b) == y_true
    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    discordant = only_a + only_b
    p_value = stats.binomtest(only_a, discordant).pvalue if discordant else 1.0
    return PairedComparison(only_a, only_b, float(p_value))


def paired_table(
    y_true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
) -> pd.DataFrame:
    """One row per ``(before, after)`` pair: images only one of them reads right, McNemar's p."""
    rows = {}
    for before, after in pairs:
        result = compare_paired(y_true, predictions[after], predictions[before])
        rows[f"{after} vs {before}"] = {
            "only the first right": result.only_a,
            "only the second right": result.only_b,
            "McNemar p": result.p_value,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def format_p(p_value: float, prose: bool = False) -> str:
    """A p-value for a reader: two significant digits or "< 0.0001"; ``prose`` adds "p = "."""
    if p_value < 1e-4:
        return "p < 0.0001" if prose else "< 0.0001"
    return f"p = {p_value:.2g}" if prose else f"{p_value:.2g}"


def f1_interval(
    y_true: np.ndarray, y_pred: np.ndarray, n_resamples: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval (percentile, seeded) of a binary F1 score, images resampled.

    F1 depends on an image only through its cell of the confusion matrix (true positive, false
    positive, false negative, true negative), so resampling the images with replacement is
    drawing the four cells' counts from a multinomial distribution with the observed shares.
    """
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    counts = np.array([(y_true & y_pred).sum(), (~y_true & y_pred).sum(), (y_true & ~y_pred).sum()])
    counts = np.append(counts, y_true.size - counts.sum())
    draws = np.random.default_rng(42).multinomial(y_true.size, counts / y_true.size, n_resamples)
    tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 2]
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    low, high = np.quantile(f1, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def recall_at_precision(y_true: np.ndarray, y_pred: np.ndarray, min_precision: float) -> float:
    """The recall of ``y_pred`` if its precision is at least ``min_precision``, else 0.

    A score for ``TunedThresholdClassifierCV``: the highest recall the precision allows. It lives
    here, not in a notebook, because a cached estimator must refer to an importable function.
    """
    if precision_score(y_true, y_pred, zero_division=0) < min_precision:
        return 0.0
    return float(recall_score(y_true, y_pred))


def roc_auc_interval(y_true: np.ndarray, y_score: np.ndarray) -> tuple[float, float]:
    """95 % confidence interval of the area under the ROC curve (DeLong's variance, normal).

    The area is the chance that a random positive is scored above a random negative (a tie
    counts one half). DeLong, DeLong and Clarke-Pearson (1988) estimate its variance from each
    image's share of the pairs it wins: for a positive, the share of negatives scored below it;
    for a negative, the share of positives scored above it.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_score = np.asarray(y_score, dtype=np.float64)
    positives, negatives = y_score[y_true], y_score[~y_true]
    m, n = positives.size, negatives.size
    ranks = stats.rankdata(np.concatenate([positives, negatives]))
    wins_of_positives = (ranks[:m] - stats.rankdata(positives)) / n
    losses_of_negatives = 1 - (ranks[m:] - stats.rankdata(negatives)) / m
    area = wins_of_positives.mean()
    error = np.sqrt(wins_of_positives.var(ddof=1) / m + losses_of_negatives.var(ddof=1) / n)
    z = stats.norm.ppf((1 + CONFIDENCE) / 2)
    return float(max(0.0, area - z * error)), float(min(1.0, area + z * error))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values for several tests that answer one question.

    Sorted from the smallest, the k-th of m p-values is multiplied by m - k + 1; each adjusted
    value is at least the one before it, and at most 1 (as statsmodels' ``multipletests`` with
    ``method="holm"``). Calling significant the tests whose adjusted p-values are below 0.05 makes
    a false claim with at most 5 % chance for the whole family, not 5 % per test.
    """
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    factors = len(p) - np.arange(len(p))
    stepped = np.minimum(np.maximum.accumulate(p[order] * factors), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted
