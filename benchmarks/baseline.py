"""``make bench-baseline``: chapter 3 of the book, its cells run as the book's notebook runs them.

The computing cells of Géron's ``03_classification.ipynb`` (third edition), in its order: library
defaults (``n_jobs`` only where the book gives it: nowhere), no cache, every cross-validated
quantity computed by its own call, float64 pixels as ``fetch_openml`` gives them; the multilabel
and multioutput cells and exercises 1 and 2 included. The figures are not drawn, and the data come
from ``load_mnist()`` (the download is not timed). The sum of these steps is the baseline.

Beside it, as rows of their own and not in the sum: the study's own SVMs, the SVC fits that the
notebooks make beyond the book's on 2,000 images (stages 4, 5 and 6), made as the notebooks make
them, on their 8-bit pixels. The section ends with the ratios of the main job, cold and warm, to
the baseline, from the sections of ``make bench-cold`` and ``make bench-warm`` in RESULTS.md.
"""

import re

import numpy as np
from joblib import Parallel, delayed
from scipy.ndimage import shift
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
    train_test_split,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from benchmarks.results import RESULTS, SECTIONS, TABLE, Meter, record, sections
from mnist_study import features
from mnist_study.book import NUMBERS
from mnist_study.data import load_mnist


def book(meter: Meter, X_train, X_test, y_train, y_test) -> None:
    """The book's cells, one step per group of cells, each step's result in its label."""
    some_digit = X_train[0]
    y_train_5 = y_train == "5"
    with meter.step("binary classifier: `SGDClassifier` fitted, one prediction"):
        sgd_clf = SGDClassifier(random_state=42)
        sgd_clf.fit(X_train, y_train_5)
        sgd_clf.predict([some_digit])
    with meter.step("accuracy: `cross_val_score`, 3 folds; the same folds by hand") as row:
        scores = cross_val_score(sgd_clf, X_train, y_train_5, cv=3, scoring="accuracy")
        for train_index, test_index in StratifiedKFold(n_splits=3).split(X_train, y_train_5):
            clone_clf = clone(sgd_clf)
            clone_clf.fit(X_train[train_index], y_train_5[train_index])
            clone_clf.predict(X_train[test_index])
        row.label += f": {scores.round(5).tolist()} ({NUMBERS['sgd_5_cv_accuracy']})"
    with meter.step("`DummyClassifier`: fitted, `cross_val_score`"):
        dummy_clf = DummyClassifier()
        dummy_clf.fit(X_train, y_train_5)
        dummy_clf.predict(X_train)
        cross_val_score(dummy_clf, X_train, y_train_5, cv=3, scoring="accuracy")
    with meter.step("confusion matrix, precision, recall, F1: `cross_val_predict`"):
        y_train_pred = cross_val_predict(sgd_clf, X_train, y_train_5, cv=3)
        confusion_matrix(y_train_5, y_train_pred)
        for score in (precision_score, recall_score, f1_score):
            score(y_train_5, y_train_pred)
    with meter.step("trade-off and ROC: cross-validated decision scores, curves, AUC"):
        sgd_clf.decision_function([some_digit])
        y_scores = cross_val_predict(sgd_clf, X_train, y_train_5, cv=3, method="decision_function")
        precision_recall_curve(y_train_5, y_scores)
        roc_curve(y_train_5, y_scores)
        roc_auc_score(y_train_5, y_scores)
    with meter.step("random forest: cross-validated probabilities, curve, F1, AUC"):
        forest_clf = RandomForestClassifier(random_state=42)
        y_probas_forest = cross_val_predict(
            forest_clf, X_train, y_train_5, cv=3, method="predict_proba"
        )
        precision_recall_curve(y_train_5, y_probas_forest[:, 1])
        f1_score(y_train_5, y_probas_forest[:, 1] >= 0.5)
        roc_auc_score(y_train_5, y_probas_forest[:, 1])
    with meter.step("multiclass: `SVC` on 2,000 images, its 10 and 45 scores"):
        svm_clf = SVC(random_state=42)
        svm_clf.fit(X_train[:2000], y_train[:2000])
        svm_clf.predict([some_digit])
        svm_clf.decision_function([some_digit])
        svm_clf.decision_function_shape = "ovo"
        svm_clf.decision_function([some_digit])
    with meter.step("`OneVsRestClassifier(SVC)` on 2,000 images"):
        ovr_clf = OneVsRestClassifier(SVC(random_state=42))
        ovr_clf.fit(X_train[:2000], y_train[:2000])
        ovr_clf.predict([some_digit])
    with meter.step("`SGDClassifier`, ten classes: fitted, `cross_val_score`") as row:
        sgd_clf = SGDClassifier(random_state=42)
        sgd_clf.fit(X_train, y_train)
        sgd_clf.decision_function([some_digit])
        scores = cross_val_score(sgd_clf, X_train, y_train, cv=3, scoring="accuracy")
        row.label += f": {scores.round(5).tolist()} ({NUMBERS['sgd_10_cv_accuracy']})"
    with meter.step("standardised pixels: `cross_val_score`") as row:
        X_train_scaled = StandardScaler().fit_transform(X_train.astype("float64"))
        scores = cross_val_score(sgd_clf, X_train_scaled, y_train, cv=3, scoring="accuracy")
        row.label += f": {scores.round(5).tolist()} ({NUMBERS['sgd_10_scaled_cv_accuracy']})"
    with meter.step("error analysis: `cross_val_predict` on standardised pixels"):
        y_train_pred = cross_val_predict(sgd_clf, X_train_scaled, y_train, cv=3)
        confusion_matrix(y_train, y_train_pred)
    with meter.step("multilabel: KNN fitted, `cross_val_predict`, F1") as row:
        y_multilabel = np.c_[y_train >= "7", y_train.astype("int8") % 2 == 1]
        knn_clf = KNeighborsClassifier()
        knn_clf.fit(X_train, y_multilabel)
        knn_clf.predict([some_digit])
        y_train_knn_pred = cross_val_predict(knn_clf, X_train, y_multilabel, cv=3)
        macro = f1_score(y_multilabel, y_train_knn_pred, average="macro")
        f1_score(y_multilabel, y_train_knn_pred, average="weighted")
        row.label += f": macro F1 {macro:.4f} ({NUMBERS['multilabel_macro_f1']:.4f})"
    with meter.step("`ClassifierChain(SVC)` on 2,000 images"):
        chain_clf = ClassifierChain(SVC(), cv=3, random_state=42)
        chain_clf.fit(X_train[:2000], y_multilabel[:2000])
        chain_clf.predict([some_digit])
    with meter.step("multioutput: noisy images, KNN fitted, one digit cleaned"):
        np.random.seed(42)
        X_train_mod = X_train + np.random.randint(0, 100, (len(X_train), 784))
        X_test_mod = X_test + np.random.randint(0, 100, (len(X_test), 784))
        knn_clf = KNeighborsClassifier()
        knn_clf.fit(X_train_mod, X_train)
        knn_clf.predict([X_test_mod[0]])
    with meter.step("exercise 1: default KNN, test accuracy") as row:
        knn_clf = KNeighborsClassifier()
        knn_clf.fit(X_train, y_train)
        accuracy = knn_clf.score(X_test, y_test)
        row.label += f": {accuracy:.4f} ({NUMBERS['knn_default_test_accuracy']})"
    with meter.step("exercise 1: `GridSearchCV` on 10,000 images, 8 candidates, 5 folds") as row:
        param_grid = [{"weights": ["uniform", "distance"], "n_neighbors": [3, 4, 5, 6]}]
        grid_search = GridSearchCV(KNeighborsClassifier(), param_grid, cv=5)
        grid_search.fit(X_train[:10_000], y_train[:10_000])
        row.label += f": {grid_search.best_params_} ({NUMBERS['knn_best_params']})"
    with meter.step("exercise 1: the best KNN refitted on 60,000 images, test accuracy") as row:
        grid_search.best_estimator_.fit(X_train, y_train)
        accuracy = grid_search.score(X_test, y_test)
        row.label += f": {accuracy:.4f} ({NUMBERS['knn_tuned_test_accuracy']})"
    with meter.step("exercise 2: four shifted copies of every training image, shuffled"):
        X_train_augmented = [image for image in X_train]
        y_train_augmented = [label for label in y_train]
        for dx, dy in ((-1, 0), (1, 0), (0, 1), (0, -1)):
            for image, label in zip(X_train, y_train, strict=True):
                shifted = shift(image.reshape((28, 28)), [dy, dx], cval=0, mode="constant")
                X_train_augmented.append(shifted.reshape([-1]))
                y_train_augmented.append(label)
        X_train_augmented = np.array(X_train_augmented)
        y_train_augmented = np.array(y_train_augmented)
        shuffle_idx = np.random.permutation(len(X_train_augmented))
        X_train_augmented = X_train_augmented[shuffle_idx]
        y_train_augmented = y_train_augmented[shuffle_idx]
    with meter.step("exercise 2: the best KNN on 300,000 images, test accuracy") as row:
        knn_clf = KNeighborsClassifier(**grid_search.best_params_)
        knn_clf.fit(X_train_augmented, y_train_augmented)
        accuracy = knn_clf.score(X_test, y_test)
        row.label += f": {accuracy:.4f} ({NUMBERS['knn_shifted_test_accuracy']})"


def study_svms(meter: Meter, X_train, X_test, y_train) -> None:
    """The SVC fits of notebooks 04, 05 and 06 beyond the book's, as they make them."""
    with meter.step("stage 4: `SVC`, 3-fold cross-validated predictions on 10,000 images"):
        cross_val_predict(SVC(random_state=42), X_train[:10_000], y_train[:10_000], cv=3, n_jobs=-1)
    with meter.step("stage 5: `SVC` fitted on 60,000 images, 10,000 test predictions"):
        SVC(random_state=42).fit(X_train, y_train).predict(X_test)
    X_deskewed, X_test_deskewed = features.deskew(X_train), features.deskew(X_test)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_deskewed, y_train, test_size=1 / 6, stratify=y_train, random_state=42
    )
    candidates = [
        make_pipeline(FunctionTransformer(transform), PCA(n_components=n, random_state=42), svc)
        for transform, n, svc in [
            *(
                (features.unit_pixels, 50, SVC(gamma=g, C=10, cache_size=1000))
                for g in (0.02, 0.04)
            ),
            *(
                (features.direction_features, 100, SVC(gamma=g, C=C, cache_size=1000))
                for g in (0.04, 0.06)
                for C in (5, 10)
            ),
        ]
    ]
    with meter.step("stage 6: six PCA → `SVC` candidates on 50,000 deskewed images, validated"):
        fitted = Parallel(n_jobs=-1)(delayed(clone(m).fit)(X_fit, y_fit) for m in candidates)
        right = [
            (p == y_val).sum()
            for p in Parallel(n_jobs=-1)(delayed(m.predict)(X_val) for m in fitted)
        ]
    best_pixels, best_directions = int(np.argmax(right[:2])), 2 + int(np.argmax(right[2:]))
    virtual = [features.ONE_PIXEL_SHIFTS, features.TWO_PIXEL_SHIFTS]

    def on_support(X, y, support, shifts):
        """The best directions model refitted on support vectors and their shifted copies."""
        X_virtual, y_virtual = features.augment_with_shifts(X[support], y[support], shifts)
        return clone(candidates[best_directions]).fit(X_virtual, y_virtual)

    with meter.step("stage 6: the best refitted on its support vectors, shifted twice and alone"):
        support = fitted[best_directions][-1].support_
        for shifts in [*virtual, ()]:
            model = on_support(X_fit, y_fit, support, shifts)
            right.append((model.predict(X_val) == y_val).sum())
    chosen = int(np.argmax(right[:-1]))  # among the candidates and the virtual SV models
    with meter.step("stage 6: the finalists refitted on 60,000 deskewed images, test predictions"):
        finals = Parallel(n_jobs=-1)(
            delayed(clone(candidates[i]).fit)(X_deskewed, y_train)
            for i in dict.fromkeys([best_pixels, best_directions])
        )
        if chosen >= len(candidates):  # a virtual SV model, on the final model's support vectors
            shifts = virtual[chosen - len(candidates)]
            finals.append(on_support(X_deskewed, y_train, finals[-1][-1].support_, shifts))
        Parallel(n_jobs=-1)(delayed(m.predict)(X_test_deskewed) for m in finals)


def ratios(baseline: float) -> list[str]:
    """The main job's wall time, cold and warm, over the baseline's, each from its dated section."""
    found = sections(RESULTS.read_text()) if RESULTS.exists() else {}
    lines = []
    for target, kind, pattern in (
        ("bench-cold", "cold", r"the main job: ([\d,.]+) s wall"),
        (
            "bench-warm",
            "warm, everything re-executed",
            r"\| everything re-executed[^|]*\| ([\d,.]+) \|",
        ),
    ):
        section = found.get(SECTIONS[target], "")
        wall, when = re.search(pattern, section), re.search(r"Measured (.+? UTC)", section)
        if wall and when:
            seconds = float(wall.group(1).replace(",", ""))
            lines.append(
                f"- the main job, {kind} (`make {target}`, measured {when.group(1)}): "
                f"{seconds:,.0f} s, {seconds / baseline:.2f}× the baseline"
            )
        else:
            lines.append(f"- the main job, {kind}: no section of `make {target}` to compare with")
    return lines


def main() -> None:
    """Run the book's cells, then the study's SVMs; record them with the ratios."""
    meter = Meter()
    X_train, X_test, y_train, y_test = load_mnist()
    book(meter, X_train.astype(np.float64), X_test.astype(np.float64), y_train, y_test)
    steps = list(meter.rows)
    baseline, cpu = sum(row.wall for row in steps), sum(row.cpu for row in steps)
    study_svms(meter, X_train, X_test, y_train)
    record(
        [
            *meter.header("bench-baseline"),
            "Each step's result follows its name, the book's in parentheses.",
            "",
            *TABLE,
            *(row.line() for row in steps),
            f"| **the baseline: the book's chapter 3** | **{baseline:,.1f}** | **{cpu:,.1f}** | "
            f"**{max(row.peak_gb for row in steps):.2f}** |",
            "| *beside it, the study's own SVMs:* | | | |",
            *(row.line() for row in meter.rows[len(steps) :]),
            "",
            *ratios(baseline),
        ]
    )


if __name__ == "__main__":
    main()
