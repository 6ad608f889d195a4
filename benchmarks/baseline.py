"""The plain baseline: the fits of stages 1-5 done the way the book's notebook does them.

Stage 4 includes the book's SGD on standardised pixels (its recipe: the scaler fitted on all
60,000 images) and the notebook's five candidates on equal terms, on 10,000 images.

One after the other, no cache, library defaults (a single core for the forest), every
cross-validated quantity computed by its own call, as in Géron's ``03_classification.ipynb``.
Run by ``make bench``; prints one line per step.
"""

from __future__ import annotations

import sys
import time

from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_predict, cross_val_score
from sklearn.multiclass import OneVsOneClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mnist_study.data import load_mnist


def step(name: str, started: float) -> float:
    """Report a finished step and return the time for the next one."""
    now = time.perf_counter()
    print(f"  baseline: {name} ({now - started:.0f} s)", file=sys.stderr, flush=True)
    return now


def main() -> None:
    """Run every fit of stages 1-5 as the book does."""
    X_train, X_test, y_train, y_test = load_mnist()
    y_train_5 = y_train == "5"
    started = time.perf_counter()
    sgd_clf = SGDClassifier(random_state=42)
    sgd_clf.fit(X_train, y_train_5)
    sgd_clf.predict(X_train[:1])
    started = step("stage 1: SGD fit", started)
    cross_val_score(sgd_clf, X_train, y_train_5, cv=3, scoring="accuracy")
    cross_val_score(DummyClassifier(), X_train, y_train_5, cv=3, scoring="accuracy")
    started = step("stage 1: cross_val_score, SGD and dummy", started)
    cross_val_predict(sgd_clf, X_train, y_train_5, cv=3)
    started = step("stage 1: cross_val_predict (confusion matrix)", started)
    cross_val_predict(sgd_clf, X_train, y_train_5, cv=3, method="decision_function")
    started = step("stage 2/3: cross-validated decision scores", started)
    forest_clf = RandomForestClassifier(random_state=42)
    cross_val_predict(forest_clf, X_train, y_train_5, cv=3, method="predict_proba")
    started = step("stage 3: forest cross-validated probabilities", started)
    sgd_clf.fit(X_train, y_train)
    sgd_clf.predict(X_train[:1])
    started = step("stage 4: SGD fit, 10 classes", started)
    cross_val_predict(sgd_clf, X_train, y_train, cv=3)
    started = step("stage 4: SGD, 10 classes, cross-validated predictions", started)
    X_train_scaled = StandardScaler().fit_transform(X_train.astype("float64"))  # the book's
    cross_val_score(sgd_clf, X_train_scaled, y_train, cv=3, scoring="accuracy")
    started = step("stage 4: SGD, 10 classes, standardised pixels, cross_val_score", started)
    cross_val_predict(OneVsOneClassifier(sgd_clf), X_train, y_train, cv=3)
    started = step("stage 4: SGD one-versus-one, cross-validated predictions", started)
    svm_clf = SVC(random_state=42).fit(X_train[:2000], y_train[:2000])
    svm_clf.predict(X_train[:1])
    cross_val_predict(svm_clf, X_train[:2000], y_train[:2000], cv=3)
    started = step("stage 4: SVC on 2,000 images, fit and cross-validated predictions", started)
    cross_val_predict(forest_clf, X_train, y_train, cv=3, method="predict_proba")
    started = step("stage 4: forest, 10 classes, cross-validated probabilities", started)
    X_small, y_small = X_train[:10_000], y_train[:10_000]
    for model in (
        sgd_clf,
        make_pipeline(StandardScaler(), sgd_clf),
        OneVsOneClassifier(sgd_clf),
        SVC(random_state=42),
        forest_clf,
    ):
        cross_val_predict(model, X_small, y_small, cv=3)
    started = step("stage 4: the five candidates on equal terms, 10,000 images", started)
    forest_clf.fit(X_train, y_train)
    accuracy = accuracy_score(y_test, forest_clf.predict(X_test))
    step(f"stage 5: forest fit on 60,000 images, test accuracy {accuracy}", started)


if __name__ == "__main__":
    main()
