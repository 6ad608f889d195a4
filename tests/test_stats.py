"""Confidence intervals and paired comparisons, on small cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from mnist_study import stats


def test_proportion_matches_the_clopper_pearson_interval() -> None:
    # 0 of 10: the exact upper bound is 1 - 0.025 ** (1 / 10) (Clopper and Pearson, 1934).
    none = stats.proportion(0, 10)
    assert none.value == 0 and none.low == 0
    assert none.high == pytest.approx(1 - 0.025 ** (1 / 10))
    half = stats.proportion(50, 100)
    assert half.low == pytest.approx(1 - half.high)  # symmetric around one half
    assert half.low < 0.5 < half.high


def test_interval_narrows_with_more_images() -> None:
    small, large = stats.proportion(97, 100), stats.proportion(9_700, 10_000)
    assert small.value == large.value
    assert large.high - large.low < (small.high - small.low) / 5


def test_accuracy_counts_right_answers() -> None:
    result = stats.accuracy(np.array(list("aabb")), np.array(list("abbb")))
    assert (result.successes, result.trials) == (3, 4)
    assert str(result).startswith("0.7500 (95% CI ")


def test_macro_interval_brackets_the_score_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 600).astype(str)
    y_pred = np.where(rng.random(600) < 0.8, y_true, rng.integers(0, 3, 600).astype(str))
    for score, function in (("recall", recall_score), ("precision", precision_score)):
        low, high = stats.macro_interval(y_true, y_pred, score, n_resamples=300)
        assert low < function(y_true, y_pred, average="macro") < high
        assert (low, high) == stats.macro_interval(y_true, y_pred, score, n_resamples=300)


def test_macro_interval_of_a_perfect_model_is_a_point() -> None:
    y = np.array(list("0123") * 10)
    assert stats.macro_interval(y, y, "recall", n_resamples=50) == (1.0, 1.0)
    with pytest.raises(ValueError, match="precision' or 'recall"):
        stats.macro_interval(y, y, "f1")


def test_paired_comparison_counts_discordant_images() -> None:
    y = np.array([1, 1, 1, 1, 0, 0])
    a = np.array([1, 1, 0, 0, 0, 1])  # right on images 0, 1, 4
    b = np.array([1, 0, 1, 1, 0, 0])  # right on images 0, 2, 3, 4, 5
    result = stats.compare_paired(y, a, b)
    assert (result.only_a, result.only_b) == (1, 3)
    # exact McNemar: two-sided binomial p of 1 success in 4 trials at one half = 10/16
    assert result.p_value == pytest.approx(10 / 16)
    assert not result.significant


def test_paired_comparison_of_identical_models_is_no_difference() -> None:
    y = np.array([0, 1, 1])
    result = stats.compare_paired(y, y, y)
    assert (result.only_a, result.only_b, result.p_value) == (0, 0, 1.0)


def test_a_lopsided_split_is_significant() -> None:
    y = np.ones(40, dtype=int)
    result = stats.compare_paired(y, np.r_[np.ones(30), np.zeros(10)], np.zeros(40))
    assert result.only_a == 30 and result.significant


def test_paired_table_names_the_first_model_of_each_row_first() -> None:
    y = np.array([1, 1, 1, 0])
    predictions = {"old": np.array([1, 0, 0, 0]), "new": np.array([1, 1, 1, 1])}
    table = stats.paired_table(y, predictions, [("old", "new")])
    assert list(table.index) == ["new vs old"]
    assert table.loc["new vs old", "only the first right"] == 2
    assert table.loc["new vs old", "only the second right"] == 1


def test_p_values_read_plainly() -> None:
    assert stats.format_p(0.0312) == "0.031"
    assert stats.format_p(1e-9) == "< 0.0001"
    assert stats.format_p(0.5, prose=True) == "p = 0.5"
    assert stats.format_p(0.0, prose=True) == "p < 0.0001"


def test_mean_interval_is_the_student_t_interval() -> None:
    values = np.array([1.0, 2.0, 4.0, 7.0])  # mean 3.5, sample standard deviation sqrt(7)
    half = 3.182446305284263 * np.sqrt(7) / 2  # t quantile 0.975 with 3 degrees of freedom
    assert stats.mean_interval(values) == pytest.approx((3.5 - half, 3.5 + half))
    low, high = stats.mean_interval(np.tile(values, 100))
    assert high - low < half / 5, "more images, narrower interval"


def test_f1_interval_surrounds_f1_and_narrows_with_more_images() -> None:
    from sklearn.metrics import f1_score

    y_true = np.array([True] * 30 + [False] * 70)
    y_pred = np.array([True] * 20 + [False] * 10 + [True] * 5 + [False] * 65)
    low, high = stats.f1_interval(y_true, y_pred)
    assert low < f1_score(y_true, y_pred) < high
    big_low, big_high = stats.f1_interval(np.tile(y_true, 100), np.tile(y_pred, 100))
    assert big_high - big_low < (high - low) / 5
    assert stats.f1_interval(y_true, y_pred) == (low, high), "seeded"


def test_roc_auc_interval_matches_a_bootstrap_and_is_degenerate_when_perfect() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y_true = rng.random(2_000) < 0.2
    y_score = rng.normal(size=2_000) + y_true * 1.5
    low, high = stats.roc_auc_interval(y_true, y_score)
    auc = roc_auc_score(y_true, y_score)
    assert low < auc < high
    resampled = []
    for _ in range(300):
        index = rng.integers(0, y_true.size, y_true.size)
        resampled.append(roc_auc_score(y_true[index], y_score[index]))
    assert high - low == pytest.approx(2 * 1.96 * np.std(resampled), rel=0.2)
    assert stats.roc_auc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)


def test_holm_multiplies_the_sorted_p_values_by_the_tests_left_in_order_and_at_most_1() -> None:
    # p = 0.043 and 0.16 over two tests: 0.043 × 2 = 0.086, then max(0.16 × 1, 0.086)
    np.testing.assert_allclose(stats.holm([0.16, 0.043]), [0.16, 0.086]), "order is kept"
    # the values statsmodels' multipletests(method="holm") gives for these four
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.6, 0.7]), [1.0, 1.0])
    assert stats.holm([0.02]).tolist() == [0.02], "one test: nothing to correct"


def test_the_cross_validation_interval_widens_the_t_interval_by_the_overlap_of_the_folds() -> None:
    folds = [0.9562, 0.9625, 0.9469]  # three folds: each trains on 2/3 and is scored on 1/3
    low, high = stats.cross_validation_interval(folds, train_size=6_667, test_size=3_333)
    plain_low, plain_high = stats.mean_interval(folds)
    assert (low + high) / 2 == pytest.approx(np.mean(folds))
    # (1/3 + 3,333/6,667) / (1/3) = 2.4997: the interval is that many times wider, squared
    assert ((high - low) / (plain_high - plain_low)) ** 2 == pytest.approx(2.4997, abs=1e-3)
    assert low < min(folds) and max(folds) < high, "covers the folds' own spread"


def test_recall_at_precision_is_the_recall_only_where_the_precision_allows() -> None:
    y_true = np.array([1, 1, 1, 1, 0, 0])
    strict = np.array([1, 1, 0, 0, 0, 0])  # precision 1, recall 0.5
    loose = np.array([1, 1, 1, 1, 1, 0])  # precision 0.8, recall 1
    assert stats.recall_at_precision(y_true, strict, min_precision=0.9) == 0.5
    assert stats.recall_at_precision(y_true, loose, min_precision=0.9) == 0.0
    assert stats.recall_at_precision(y_true, loose, min_precision=0.8) == 1.0
    assert stats.recall_at_precision(y_true, np.zeros(6, int), min_precision=0.9) == 0.0
