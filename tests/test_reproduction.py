"""The book's numbers, reproduced to the last digit on the full MNIST data (make test-full)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from mnist_study import knn_search, multilabel
from mnist_study.book import NUMBERS as BOOK
from mnist_study.cache import cached, fit, predict
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
    """Notebooks 01-03's cross-validated decision scores, through the same cached call."""
    X_train, _, y_train, _ = mnist
    sgd_clf = SGDClassifier(random_state=42)
    return cached(cross_val_predict)(
        sgd_clf, X_train, y_train == "5", cv=3, method="decision_function", n_jobs=-1
    )


def test_sgd_fold_accuracy_and_dummy(mnist, sgd_scores) -> None:
    X_train, _, y_train, _ = mnist
    y5 = y_train == "5"
    folds = StratifiedKFold(3).split(X_train, y5)
    accuracy = [accuracy_score(y5[test], sgd_scores[test] > 0) for _, test in folds]
    assert accuracy == BOOK["sgd_5_cv_accuracy"]
    dummy = cross_val_score(DummyClassifier(), X_train, y5, cv=3, scoring="accuracy")
    assert dummy.tolist() == BOOK["dummy_5_cv_accuracy"]


def test_sgd_confusion_matrix_precision_recall_f1(mnist, sgd_scores) -> None:
    y5 = mnist[2] == "5"
    y_pred = sgd_scores > 0
    assert confusion_matrix(y5, y_pred).tolist() == BOOK["sgd_5_confusion_matrix"]
    assert precision_score(y5, y_pred) == BOOK["sgd_5_precision"]
    assert recall_score(y5, y_pred) == BOOK["sgd_5_recall"]
    # the book prints ...846: the harmonic mean of the same precision and recall, rounded once
    # more differently by today's formula 2TP / (2TP + FP + FN)
    assert abs(f1_score(y5, y_pred) - BOOK["sgd_5_f1"]) < 1e-15


def test_threshold_for_90_percent_precision(mnist, sgd_scores) -> None:
    y5 = mnist[2] == "5"
    precisions, _, thresholds = precision_recall_curve(y5, sgd_scores)
    threshold = thresholds[(precisions >= 0.90).argmax()]
    assert threshold == BOOK["threshold_for_90_precision"]
    y_pred = sgd_scores >= threshold
    assert precision_score(y5, y_pred) == BOOK["precision_at_90_threshold"]
    assert recall_score(y5, y_pred) == BOOK["recall_at_90_threshold"]


def test_roc_auc_of_both_and_forest_scores(mnist, sgd_scores) -> None:
    X_train, _, y_train, _ = mnist
    y5 = y_train == "5"
    assert roc_auc_score(y5, sgd_scores) == BOOK["sgd_5_roc_auc"]
    forest_clf = RandomForestClassifier(random_state=42, n_jobs=-1)
    probas = cached(cross_val_predict)(forest_clf, X_train, y5, cv=3, method="predict_proba")
    assert roc_auc_score(y5, probas[:, 1]) == BOOK["forest_5_roc_auc"]
    y_pred = probas[:, 1] >= 0.5
    assert precision_score(y5, y_pred) == BOOK["forest_5_precision"]
    assert recall_score(y5, y_pred) == BOOK["forest_5_recall"]
    assert f1_score(y5, y_pred) == BOOK["forest_5_f1"]


def test_forest_test_accuracy(mnist) -> None:
    X_train, X_test, y_train, y_test = mnist
    forest_clf = fit(RandomForestClassifier(random_state=42, n_jobs=-1), X_train, y_train)
    assert accuracy_score(y_test, forest_clf.predict(X_test)) == 0.9705  # the study's own


# Stage 7: Géron's 03_classification.ipynb (third edition), "Multilabel Classification",
# reproduced through the same cached calls as notebook 07.
@pytest.fixture(scope="module")
def multilabel_targets(mnist) -> np.ndarray:
    y_train = mnist[2]
    return np.c_[y_train >= "7", y_train.astype("int8") % 2 == 1]


@pytest.fixture(scope="module")
def float_pixels(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The book's float64 pixels (notebooks 06 and 07 make the same copies)."""
    return mnist[0].astype(np.float64), mnist[1].astype(np.float64)


def test_multilabel_knn_prediction_for_some_digit(float_pixels, multilabel_targets) -> None:
    X_train_float, _ = float_pixels
    knn_clf = KNeighborsClassifier().fit(X_train_float, multilabel_targets)
    assert repr(knn_clf.predict(X_train_float[:1])) == "array([[False,  True]])"


def test_multilabel_cross_validated_f1(float_pixels, multilabel_targets) -> None:
    X_train_float, _ = float_pixels
    knn_clf = KNeighborsClassifier().fit(X_train_float, multilabel_targets)  # as notebook 07
    predictions = cached(cross_val_predict)(knn_clf, X_train_float, multilabel_targets, cv=3)
    assert (
        f1_score(multilabel_targets, predictions, average="weighted")
        == BOOK["multilabel_weighted_f1"]
    )
    # the book's scikit-learn computed F1 as 2PR / (P + R); today's computes 2TP / (2TP + FP + FN),
    # which rounds the macro average one bit differently
    harmonic = multilabel.f1_from_precision_and_recall(multilabel_targets, predictions)
    assert np.average(harmonic) == BOOK["multilabel_macro_f1"]
    assert (
        abs(f1_score(multilabel_targets, predictions, average="macro") - np.average(harmonic))
        < 2e-16
    )


def test_classifier_chain_prediction_for_some_digit(mnist, multilabel_targets) -> None:
    X_train = mnist[0]
    chain = ClassifierChain(SVC(), cv=3, random_state=42)
    chain.fit(X_train[:2000], multilabel_targets[:2000])
    assert repr(chain.predict(X_train[:1])) == "array([[0., 1.]])"


def test_svc_on_2000_images_reads_the_books_digit_with_the_books_scores(mnist) -> None:
    """The book's SVC and one-versus-rest SVC on the first 2,000 training images."""
    X_train, _, y_train, _ = mnist
    svm_clf = SVC(random_state=42).fit(X_train[:2000], y_train[:2000])
    scores = svm_clf.decision_function(X_train[:1]).round(2)
    assert svm_clf.predict(X_train[:1]).tolist() == ["5"]
    assert scores.tolist() == [BOOK["svc_some_digit_scores"]]
    ovr_clf = OneVsRestClassifier(SVC(random_state=42)).fit(X_train[:2000], y_train[:2000])
    assert ovr_clf.predict(X_train[:1]).tolist() == ["5"] and len(ovr_clf.estimators_) == 10


# Stage 6: Géron's 03_classification.ipynb (third edition), exercises 1 and 2, through the same
# cached calls as notebook 06.
def test_default_knn_test_accuracy(mnist, float_pixels) -> None:
    X_train_float, X_test_float = float_pixels
    knn_clf = KNeighborsClassifier().fit(X_train_float, mnist[2])
    accuracy = accuracy_score(mnist[3], predict(knn_clf, X_test_float))
    assert accuracy == BOOK["knn_default_test_accuracy"]


def test_the_books_grid_search_on_10000_images(mnist, float_pixels) -> None:
    X_train_float, X_test_float = float_pixels
    y_train, y_test = mnist[2], mnist[3]
    search = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5, n_jobs=-1)
    search = fit(search, X_train_float[:10_000], y_train[:10_000])
    assert search.best_params_ == BOOK["knn_best_params"]
    assert search.best_score_ == BOOK["knn_best_score"]
    shared = knn_search.neighbour_search(X_train_float[:10_000], y_train[:10_000])
    for fold in range(5):
        key = f"split{fold}_test_score"
        np.testing.assert_array_equal(shared.cv_results_[key], search.cv_results_[key])
    knn_clf = KNeighborsClassifier(**search.best_params_).fit(X_train_float, y_train)
    accuracy = accuracy_score(y_test, predict(knn_clf, X_test_float))
    assert accuracy == BOOK["knn_tuned_test_accuracy"]
