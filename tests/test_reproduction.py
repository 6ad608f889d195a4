"""The book's numbers, reproduced to the last digit on the full MNIST data (make test-full)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import cross_val_score

from mnist_study import models
from mnist_study.data import load_mnist

pytestmark = pytest.mark.full_data


@pytest.fixture(scope="module")
def mnist(request: pytest.FixtureRequest):
    """The full dataset from the project's cache (the autouse isolation does not apply here)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MNIST_STUDY_DATA_DIR", raising=False)
        return load_mnist()


@pytest.fixture(scope="module")
def sgd_scores(mnist) -> np.ndarray:
    X_train, _, y_train, _ = mnist
    return models.cross_val_output(
        models.sgd_classifier(), X_train, y_train == "5", method="decision_function"
    )


def test_sgd_fold_accuracy_and_dummy(mnist, sgd_scores) -> None:
    X_train, _, y_train, _ = mnist
    y5 = y_train == "5"
    folds = models.fold_scores(y5, sgd_scores > 0, accuracy_score)
    np.testing.assert_array_equal(folds, [0.95035, 0.96035, 0.9604])
    dummy = cross_val_score(DummyClassifier(), X_train, y5, cv=3, scoring="accuracy")
    np.testing.assert_array_equal(dummy, [0.90965, 0.90965, 0.90965])


def test_sgd_confusion_matrix_precision_recall_f1(mnist, sgd_scores) -> None:
    y5 = mnist[2] == "5"
    y_pred = sgd_scores > 0
    assert confusion_matrix(y5, y_pred).tolist() == [[53892, 687], [1891, 3530]]
    assert precision_score(y5, y_pred) == 0.8370879772350012
    assert recall_score(y5, y_pred) == 0.6511713705958311
    assert f"{f1_score(y5, y_pred):.14f}".startswith("0.73251711973438")


def test_threshold_for_90_percent_precision(mnist, sgd_scores) -> None:
    y5 = mnist[2] == "5"
    precisions, _, thresholds = precision_recall_curve(y5, sgd_scores)
    threshold = thresholds[(precisions >= 0.90).argmax()]
    assert threshold == 3370.0194991439557
    y_pred = sgd_scores >= threshold
    assert precision_score(y5, y_pred) == 0.9000345901072293
    assert recall_score(y5, y_pred) == 0.4799852425751706


def test_roc_auc_of_both_and_forest_scores(mnist, sgd_scores) -> None:
    X_train, _, y_train, _ = mnist
    y5 = y_train == "5"
    assert roc_auc_score(y5, sgd_scores) == 0.9604938554008616
    probas = models.cross_val_output(models.random_forest(), X_train, y5, method="predict_proba")
    assert roc_auc_score(y5, probas[:, 1]) == 0.9983436731328145
    y_pred = probas[:, 1] >= 0.5
    assert precision_score(y5, y_pred) == 0.9897468089558485
    assert recall_score(y5, y_pred) == 0.8725327430363402
    assert f1_score(y5, y_pred) == 0.9274509803921569


def test_forest_test_accuracy(mnist) -> None:
    X_train, X_test, y_train, y_test = mnist
    y_pred = models.fit_predict(models.random_forest(), X_train, y_train, X_test)
    assert accuracy_score(y_test, y_pred) == 0.9705
