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
    multilabel_confusion_matrix,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from mnist_study import features, knn_search, multilabel
from mnist_study.book import NUMBERS as BOOK
from mnist_study.cache import cached, fit
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
# cells [80]-[85], reproduced through the same cached calls as notebook 07.
@pytest.fixture(scope="module")
def multilabel_targets(mnist) -> np.ndarray:
    return multilabel.multilabel_targets(mnist[2])


def test_multilabel_knn_prediction_for_some_digit(mnist, multilabel_targets) -> None:
    X_train = mnist[0]
    knn = features.on_float_pixels(KNeighborsClassifier())
    prediction = models.fit_predict(knn, X_train, multilabel_targets, X_train[:1])
    assert repr(prediction) == "array([[False,  True]])"  # cell [81]


def test_multilabel_cross_validated_f1(mnist, multilabel_targets) -> None:
    knn = features.on_float_pixels(KNeighborsClassifier())
    predictions = models.cross_val_output(knn, mnist[0], multilabel_targets, cv=3)
    counts = multilabel_confusion_matrix(multilabel_targets, predictions)
    assert counts.tolist() == [[[41485, 450], [599, 17466]], [[28683, 809], [300, 30208]]]
    # cell [83]: the weighted average is the book's with either formula
    assert f1_score(multilabel_targets, predictions, average="weighted") == 0.9778357403921755
    # cell [82]: the book's scikit-learn computed F1 as 2PR / (P + R); scikit-learn >= 1.4
    # computes 2TP / (2TP + FP + FN), which rounds the macro average one bit differently
    harmonic = multilabel.f1_from_precision_and_recall(multilabel_targets, predictions)
    assert np.average(harmonic) == 0.976410265560605
    assert f1_score(multilabel_targets, predictions, average="macro") == 0.9764102655606048
    support = multilabel_targets.sum(axis=0)
    assert np.average(harmonic, weights=support) == 0.9778357403921755


def test_classifier_chain_prediction_for_some_digit(mnist, multilabel_targets) -> None:
    X_train = mnist[0]
    chain = ClassifierChain(SVC(), cv=3, random_state=42)
    prediction = models.fit_predict(chain, X_train[:2000], multilabel_targets[:2000], X_train[:1])
    assert repr(prediction) == "array([[0., 1.]])"  # cell [85]


def test_denoising_scores(mnist) -> None:
    """Notebook 07's own numbers (the book prints none for its multioutput example)."""
    X_train, X_test, y_train, y_test = mnist
    noisy_train, noisy_test = multilabel.noisy_copies(X_train, X_test)
    denoiser = features.on_float_pixels(KNeighborsClassifier())
    cleaned = models.fit_predict(
        denoiser, noisy_train, X_train, noisy_test, batch=multilabel.PREDICT_BATCH
    )
    noisy_mse = multilabel.squared_error_per_image(noisy_test, X_test).mean()
    cleaned_mse = multilabel.squared_error_per_image(cleaned, X_test).mean()
    assert (round(noisy_mse, 1), round(cleaned_mse, 1)) == (3284.4, 2225.6)
    forest = models.fit_predict(
        models.random_forest(), X_train, y_train, np.vstack([X_test, noisy_test, cleaned])
    )
    accuracies = [accuracy_score(y_test, part) for part in np.split(forest, 3)]
    assert accuracies == [0.9705, 0.2691, 0.9334]


def test_svc_on_2000_images_reads_the_books_digit_with_the_books_scores(mnist) -> None:
    """The book's SVC and one-versus-rest SVC on the first 2,000 training images (its cells
    on "Multiclass Classification" print these outputs)."""
    X_train, _, y_train, _ = mnist
    svm_clf = SVC(random_state=42).fit(X_train[:2000], y_train[:2000])
    scores = svm_clf.decision_function(X_train[:1]).round(2)
    assert svm_clf.predict(X_train[:1]).tolist() == ["5"]
    assert scores.tolist() == [BOOK["svc_some_digit_scores"]]
    ovr_clf = OneVsRestClassifier(SVC(random_state=42)).fit(X_train[:2000], y_train[:2000])
    assert ovr_clf.predict(X_train[:1]).tolist() == ["5"] and len(ovr_clf.estimators_) == 10


# Stage 6: Géron's 03_classification.ipynb (third edition), exercise 1, cells [89]-[93],
# through the same cached calls as notebook 06.
def test_default_knn_test_accuracy(mnist) -> None:
    X_train, X_test, y_train, y_test = mnist
    knn = features.on_float_pixels(KNeighborsClassifier())
    assert accuracy_score(y_test, models.fit_predict(knn, X_train, y_train, X_test)) == 0.9688


def test_the_books_grid_search_on_10000_images(mnist) -> None:
    X_train, X_test, y_train, y_test = mnist
    search = knn_search.book_search(X_train[:10_000], y_train[:10_000])
    assert search.best_params_ == {"n_neighbors": 4, "weights": "distance"}  # cell [91]
    assert search.best_score_ == 0.9441999999999998  # cell [92]
    knn = features.on_float_pixels(KNeighborsClassifier(**search.best_params_))
    tuned = models.fit_predict(knn, X_train, y_train, X_test)
    assert accuracy_score(y_test, tuned) == 0.9714  # cell [93]
