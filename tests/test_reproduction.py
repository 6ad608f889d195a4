"""The book's numbers, reproduced to the last digit on the full MNIST data (make test-full)."""

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
from tests.pages import output_text
from tools.paths import ROOT

pytestmark = pytest.mark.full_data


def book(*keys: str) -> list:
    return [BOOK[key] for key in keys]


@pytest.fixture(autouse=True)
def isolated_environment() -> None:
    """Not isolated here: the project's dataset and results caches, as the notebooks use them."""


@pytest.fixture(scope="module")
def mnist():
    """The full dataset from the project's cache."""
    return load_mnist()


@pytest.fixture(scope="module")
def float_pixels(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The book's float64 pixels (notebooks 06 and 07 make the same copies)."""
    return mnist[0].astype(np.float64), mnist[1].astype(np.float64)


def test_the_sgd_5_detector(mnist) -> None:
    """Notebooks 01-03's cross-validated scores: accuracy (and the dummy's), counts, measures."""
    X_train, _, y_train, _ = mnist
    y5 = y_train == "5"
    scores = cached(cross_val_predict)(
        SGDClassifier(random_state=42), X_train, y5, cv=3, method="decision_function", n_jobs=-1
    )
    folds = StratifiedKFold(3).split(X_train, y5)
    accuracy = [accuracy_score(y5[test], scores[test] > 0) for _, test in folds]
    assert accuracy == BOOK["sgd_5_cv_accuracy"]
    dummy = cross_val_score(DummyClassifier(), X_train, y5, cv=3, scoring="accuracy")
    assert dummy.tolist() == BOOK["dummy_5_cv_accuracy"]
    y_pred = scores > 0
    assert confusion_matrix(y5, y_pred).tolist() == BOOK["sgd_5_confusion_matrix"]
    measures = [precision_score(y5, y_pred), recall_score(y5, y_pred), roc_auc_score(y5, scores)]
    assert measures == book("sgd_5_precision", "sgd_5_recall", "sgd_5_roc_auc")
    # the book prints ...846: the harmonic mean of the same precision and recall, rounded once
    # more differently by today's formula 2TP / (2TP + FP + FN)
    assert abs(f1_score(y5, y_pred) - BOOK["sgd_5_f1"]) < 1e-15
    precisions, _, thresholds = precision_recall_curve(y5, scores)
    threshold = thresholds[(precisions >= 0.90).argmax()]
    y_pred = scores >= threshold
    assert [threshold, precision_score(y5, y_pred), recall_score(y5, y_pred)] == book(
        "threshold_for_90_precision", "precision_at_90_threshold", "recall_at_90_threshold"
    )


def test_the_random_forests(mnist) -> None:
    """The forest 5-detector's measures and the ten-class forest notebook 06 prints."""
    X_train, X_test, y_train, y_test = mnist
    y5 = y_train == "5"
    forest_clf = RandomForestClassifier(random_state=42, n_jobs=-1)
    probas = cached(cross_val_predict)(forest_clf, X_train, y5, cv=3, method="predict_proba")[:, 1]
    y_pred = probas >= 0.5
    measures = [roc_auc_score(y5, probas), precision_score(y5, y_pred), recall_score(y5, y_pred)]
    assert [*measures, f1_score(y5, y_pred)] == book(
        "forest_5_roc_auc", "forest_5_precision", "forest_5_recall", "forest_5_f1"
    )
    accuracy = accuracy_score(y_test, fit(forest_clf, X_train, y_train).predict(X_test))
    printed = output_text(ROOT / "notebooks" / "06_beyond_97_percent.ipynb")
    assert f"random forest (stage 5 reference): test accuracy {accuracy:.4f} " in printed


def test_the_multilabel_knn(mnist, float_pixels) -> None:
    """Géron's "Multilabel Classification", through the same cached calls as notebook 07."""
    X_train_float, _ = float_pixels
    y_multilabel = np.c_[mnist[2] >= "7", mnist[2].astype("int8") % 2 == 1]
    knn_clf = KNeighborsClassifier().fit(X_train_float, y_multilabel)
    assert repr(knn_clf.predict(X_train_float[:1])) == "array([[False,  True]])"
    predictions = cached(cross_val_predict)(knn_clf, X_train_float, y_multilabel, cv=3)
    weighted = f1_score(y_multilabel, predictions, average="weighted")
    assert weighted == BOOK["multilabel_weighted_f1"]
    # the book's scikit-learn computed F1 as 2PR / (P + R); today's computes 2TP / (2TP + FP + FN),
    # which rounds the macro average one bit differently
    harmonic = np.average(multilabel.f1_from_precision_and_recall(y_multilabel, predictions))
    assert harmonic == BOOK["multilabel_macro_f1"]
    assert abs(f1_score(y_multilabel, predictions, average="macro") - harmonic) < 2e-16
    chain = ClassifierChain(SVC(), cv=3, random_state=42)
    chain.fit(mnist[0][:2000], y_multilabel[:2000])
    assert repr(chain.predict(mnist[0][:1])) == "array([[0., 1.]])"


def test_svc_on_2000_images_reads_the_books_digit_with_the_books_scores(mnist) -> None:
    """The book's SVC and one-versus-rest SVC on the first 2,000 training images."""
    X_train, _, y_train, _ = mnist
    svm_clf = SVC(random_state=42).fit(X_train[:2000], y_train[:2000])
    assert svm_clf.predict(X_train[:1]).tolist() == ["5"]
    assert svm_clf.decision_function(X_train[:1]).round(2).tolist() == book("svc_some_digit_scores")
    ovr_clf = OneVsRestClassifier(SVC(random_state=42)).fit(X_train[:2000], y_train[:2000])
    assert ovr_clf.predict(X_train[:1]).tolist() == ["5"] and len(ovr_clf.estimators_) == 10


def test_the_books_exercise_1_knn_and_its_grid_search(mnist, float_pixels) -> None:
    """The default KNN, the grid search on 10,000 images and the tuned KNN."""
    X_train_float, X_test_float = float_pixels
    y_train, y_test = mnist[2], mnist[3]
    default = KNeighborsClassifier().fit(X_train_float, y_train)
    assert (
        accuracy_score(y_test, predict(default, X_test_float)) == BOOK["knn_default_test_accuracy"]
    )
    search = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5, n_jobs=-1)
    search = fit(search, X_train_float[:10_000], y_train[:10_000])
    assert [search.best_params_, search.best_score_] == book("knn_best_params", "knn_best_score")
    shared = knn_search.neighbour_search(X_train_float[:10_000], y_train[:10_000])
    for key in (f"split{fold}_test_score" for fold in range(5)):
        np.testing.assert_array_equal(shared.cv_results_[key], search.cv_results_[key])
    knn_clf = KNeighborsClassifier(**search.best_params_).fit(X_train_float, y_train)
    accuracy = accuracy_score(y_test, predict(knn_clf, X_test_float))
    assert accuracy == BOOK["knn_tuned_test_accuracy"]
