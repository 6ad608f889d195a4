"""Confidence intervals and paired comparisons, on small cases whose answers are known."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from mnist_study import stats


def test_proportion_is_the_clopper_pearson_interval_and_narrows_with_more_images() -> None:
    """0 of 10: the exact upper bound is 1 - 0.025 ** (1 / 10) (Clopper and Pearson, 1934)."""
    none = stats.proportion(0, 10)
    assert (none.value, none.low, none.high) == (0, 0, pytest.approx(1 - 0.025 ** (1 / 10)))
    half = stats.proportion(50, 100)
    assert half.low == pytest.approx(1 - half.high) and half.low < 0.5 < half.high
    small, large = stats.proportion(97, 100), stats.proportion(9_700, 10_000)
    assert large.high - large.low < (small.high - small.low) / 5
    result = stats.accuracy(np.array(list("aabb")), np.array(list("abbb")))
    assert result.trials == 4 and str(result).startswith("0.7500 (95% CI ")


def test_macro_interval_brackets_the_score_and_is_reproducible() -> None:
    """A point for a perfect model; only precision and recall are asked for."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 600).astype(str)
    y_pred = np.where(rng.random(600) < 0.8, y_true, rng.integers(0, 3, 600).astype(str))
    for score, function in (("recall", recall_score), ("precision", precision_score)):
        low, high = stats.macro_interval(y_true, y_pred, score, n_resamples=300)
        assert low < function(y_true, y_pred, average="macro") < high
        assert (low, high) == stats.macro_interval(y_true, y_pred, score, n_resamples=300)
    assert stats.macro_interval(y_true, y_true, "recall", n_resamples=50) == (1.0, 1.0)
    with pytest.raises(ValueError, match="precision' or 'recall"):
        stats.macro_interval(y_true, y_pred, "f1")


@pytest.mark.parametrize(
    ("y", "a", "b", "expected"),
    [
        # right on images 0, 1, 4 and on 0, 2, 3, 4, 5: exact McNemar, a two-sided binomial
        # p of 1 success in 4 trials at one half is 10/16
        ([1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 1], [1, 0, 1, 1, 0, 0], (1, 3, 10 / 16, False)),
        ([0, 1, 1], [0, 1, 1], [0, 1, 1], (0, 0, 1.0, False)),
        ([1] * 40, [1] * 30 + [0] * 10, [0] * 40, (30, 0, 2 * 0.5**30, True)),
    ],
    ids=["discordant", "identical", "lopsided"],
)
def test_paired_comparison_counts_the_discordant_images(y, a, b, expected) -> None:
    """McNemar's exact test; a table's row "a vs b" counts the images only a reads right first."""
    pair = stats.compare_paired(y, a, b)
    assert (pair.only_a, pair.only_b, pair.p_value, pair.significant) == pytest.approx(expected)
    row = stats.paired_table(y, {"a": a, "b": b}, [("b", "a")]).loc["a vs b"]
    assert (row["only the first right"], row["only the second right"]) == expected[:2]


def test_mean_interval_is_student_t_widened_by_the_folds_overlap_for_cross_validation():
    values = np.array([1.0, 2.0, 4.0, 7.0])  # mean 3.5, sample standard deviation sqrt(7)
    half = 3.182446305284263 * np.sqrt(7) / 2  # t quantile 0.975 with 3 degrees of freedom
    assert stats.mean_interval(values) == pytest.approx((3.5 - half, 3.5 + half))
    folds = [0.9562, 0.9625, 0.9469]  # three folds: each trains on 2/3 and is scored on 1/3
    low, high = stats.cross_validation_interval(folds, train_size=6_667, test_size=3_333)
    plain_low, plain_high = stats.mean_interval(folds)
    assert (low + high) / 2 == pytest.approx(np.mean(folds))
    # (1/3 + 3,333/6,667) / (1/3) = 2.4997: the interval is that many times wider, squared
    assert ((high - low) / (plain_high - plain_low)) ** 2 == pytest.approx(2.4997, abs=1e-3)


def test_roc_auc_and_f1_intervals_surround_the_score_and_narrow_with_more_images() -> None:
    """The ROC AUC interval as wide as a bootstrap's, a point when perfect; F1's seeded."""
    rng = np.random.default_rng(0)
    y_true = rng.random(2_000) < 0.2
    y_score = rng.normal(size=2_000) + y_true * 1.5
    low, high = stats.roc_auc_interval(y_true, y_score)
    assert low < roc_auc_score(y_true, y_score) < high
    resamples = rng.integers(0, y_true.size, (300, y_true.size))
    resampled = [roc_auc_score(y_true[index], y_score[index]) for index in resamples]
    assert high - low == pytest.approx(2 * 1.96 * np.std(resampled), rel=0.2)
    assert stats.roc_auc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)
    y5 = np.array([True] * 30 + [False] * 70)
    p5 = np.array([True] * 20 + [False] * 10 + [True] * 5 + [False] * 65)
    low, high = stats.f1_interval(y5, p5)
    assert low < f1_score(y5, p5) < high
    big_low, big_high = stats.f1_interval(np.tile(y5, 100), np.tile(p5, 100))
    assert big_high - big_low < (high - low) / 5
    assert stats.f1_interval(y5, p5) == (low, high)


def test_holm_multiplies_the_sorted_p_values_by_the_tests_left_and_p_values_read_plainly():
    # p = 0.043 and 0.16 over two tests: 0.043 × 2 = 0.086, then max(0.16 × 1, 0.086); order kept
    np.testing.assert_allclose(stats.holm([0.16, 0.043]), [0.16, 0.086])
    # the values statsmodels' multipletests(method="holm") gives for these four
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.6, 0.7]), [1.0, 1.0])
    assert stats.holm([0.02]).tolist() == [0.02], "one test: nothing to correct"
    shown = [stats.format_p(0.0312), stats.format_p(1e-9)]
    shown += [stats.format_p(0.5, prose=True), stats.format_p(0.0, prose=True)]
    assert shown == ["0.031", "< 0.0001", "p = 0.5", "p < 0.0001"]


def test_recall_at_precision_is_the_recall_only_where_the_precision_allows() -> None:
    y_true = np.array([1, 1, 1, 1, 0, 0])
    strict = np.array([1, 1, 0, 0, 0, 0])  # precision 1, recall 0.5
    loose = np.array([1, 1, 1, 1, 1, 0])  # precision 0.8, recall 1
    found = [stats.recall_at_precision(y_true, p, 0.9) for p in (strict, loose, 0 * loose)]
    assert [*found, stats.recall_at_precision(y_true, loose, 0.8)] == [0.5, 0.0, 0.0, 1.0]
