"""Uncertainty of test scores and paired comparisons of two models on the same images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "CONFIDENCE",
    "PairedComparison",
    "Proportion",
    "accuracy",
    "compare_paired",
    "format_p",
    "holm",
    "macro_interval",
    "mean_interval",
    "paired_table",
    "proportion",
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


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values that answer one question together (input order).

    The smallest of m p-values is multiplied by m, the next by m - 1, and so on, each kept at
    least as large as the one before and at most 1; an adjusted p under 0.05 is significant with
    a 5 % chance, over all the tests together, of calling any difference that is noise a real one.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted
