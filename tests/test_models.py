"""Cached cross-validation: same results as scikit-learn's own calls, computed once, never stale."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, _forest
from sklearn.linear_model import SGDClassifier, _stochastic_gradient
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_predict, cross_val_score

from mnist_study import models
from mnist_study.data import load_mnist


@pytest.fixture
def small_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("MNIST_STUDY_CACHE_DIR", str(tmp_path / "cache"))
    models.memory.cache_clear()
    from conftest import FIXTURE_PATH

    X_train, X_test, y_train, y_test = load_mnist(600, fixture=FIXTURE_PATH)
    yield X_train, X_test, y_train, y_test
    models.memory.cache_clear()


@pytest.fixture
def count_fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every real cross_val_predict call the cached functions make."""
    calls: list[str] = []
    real = models.cross_val_predict

    def counting(*args, **kwargs):
        calls.append(kwargs.get("method", "predict"))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "cross_val_predict", counting)
    return calls


def fast_sgd(**params) -> SGDClassifier:
    return SGDClassifier(random_state=42, max_iter=20, tol=None, **params)


def test_fold_scores_equal_cross_val_score(small_data) -> None:
    X, _, y, _ = small_data
    y5 = y == "5"
    scores = models.cross_val_output(fast_sgd(), X, y5, method="decision_function")
    derived = models.fold_scores(y5, scores > 0, accuracy_score)
    direct = cross_val_score(fast_sgd(), X, y5, cv=3, scoring="accuracy")
    np.testing.assert_array_equal(derived, direct)


def test_hard_predictions_derive_from_decision_scores(small_data) -> None:
    X, _, y, _ = small_data
    y5 = y == "5"
    scores = models.cross_val_output(fast_sgd(), X, y5, method="decision_function")
    np.testing.assert_array_equal(scores > 0, cross_val_predict(fast_sgd(), X, y5, cv=3))


def test_forest_predictions_derive_from_probabilities(small_data) -> None:
    X, _, y, _ = small_data
    forest = models.random_forest().set_params(n_estimators=10)
    probas = models.cross_val_output(forest, X, y, method="predict_proba")
    derived = np.unique(y)[probas.argmax(axis=1)]
    np.testing.assert_array_equal(derived, cross_val_predict(forest, X, y, cv=3))


def test_results_are_cached_and_keyed_by_parameters_and_data(small_data, count_fits) -> None:
    X, _, y, _ = small_data
    y5 = y == "5"
    first = models.cross_val_output(fast_sgd(), X, y5, method="decision_function")
    again = models.cross_val_output(fast_sgd(), X, y5, method="decision_function")
    assert count_fits == ["decision_function"], "the second call is served from the cache"
    np.testing.assert_array_equal(first, again)
    models.cross_val_output(fast_sgd(alpha=1e-3), X, y5, method="decision_function")
    assert len(count_fits) == 2, "a changed parameter is recomputed"
    X_changed = X.copy()
    X_changed[0, 300] ^= 1
    models.cross_val_output(fast_sgd(), X_changed, y5, method="decision_function")
    assert len(count_fits) == 3, "changed data is recomputed"


def test_library_upgrade_invalidates_the_cache(small_data, count_fits, monkeypatch) -> None:
    X, _, y, _ = small_data
    models.cross_val_output(fast_sgd(), X, y == "5", method="decision_function")
    monkeypatch.setitem(models.LIBRARY_VERSIONS, "scikit-learn", "0.0-other")
    models.memory.cache_clear()  # the location is keyed when the cache is opened
    models.cross_val_output(fast_sgd(), X, y == "5", method="decision_function")
    assert len(count_fits) == 2


def test_fit_predict_is_cached(small_data, monkeypatch) -> None:
    X_train, X_test, y_train, _ = small_data
    fits: list[int] = []
    real_clone = models.clone

    def counting_clone(estimator):
        fits.append(1)
        return real_clone(estimator)

    monkeypatch.setattr(models, "clone", counting_clone)
    first = models.fit_predict(fast_sgd(), X_train, y_train, X_test)
    second = models.fit_predict(fast_sgd(), X_train, y_train, X_test)
    assert len(fits) == 1
    np.testing.assert_array_equal(first, second)
    assert first.shape == (len(X_test),)


def test_cache_lives_where_configured(small_data, tmp_path) -> None:
    X, _, y, _ = small_data
    models.cross_val_output(fast_sgd(), X, y == "5", method="decision_function")
    assert any((tmp_path / "cache" / "joblib").rglob("output.pkl"))


def test_processes_asking_for_the_same_call_compute_it_once(tmp_path) -> None:
    """Two notebooks running side by side and needing one result: one computes, one waits."""
    (tmp_path / "slow_work.py").write_text(
        "import os, time\n"
        "from pathlib import Path\n"
        "def compute(n):\n"
        "    with open(os.environ['CALLS_FILE'], 'a') as calls:\n"
        "        calls.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(2)\n"
        "    return n * n\n"
    )
    caller = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mnist_study import models\n"
        "import slow_work\n"
        "Path(sys.argv[1]).touch()\n"
        "while not all(Path(p).exists() for p in sys.argv[2:]):\n"
        "    time.sleep(0.01)\n"
        "print(models.run_cached(slow_work.compute, 12))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "MNIST_STUDY_CACHE_DIR": str(tmp_path / "cache"),
        "CALLS_FILE": str(tmp_path / "calls.txt"),
    }
    ready = [str(tmp_path / f"ready-{n}") for n in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", caller, mine, *ready],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mine in ready
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    assert [out.strip() for out, _ in results] == ["144", "144"]
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 1


def test_lock_names_do_not_read_array_contents() -> None:
    sgd = fast_sgd()
    a, b = np.zeros((3, 4), np.uint8), np.ones((3, 4), np.uint8)
    name = models.lock_name(models.compute_cross_val_output, (sgd, a))
    assert name == models.lock_name(models.compute_cross_val_output, (sgd, b))
    assert name != models.lock_name(models.compute_cross_val_output, (fast_sgd(alpha=1), a))
    assert name != models.lock_name(models.compute_fit_predict, (sgd, a))
    assert name != models.lock_name(models.compute_cross_val_output, (sgd, a[:2]))


def threads_used(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> set[int]:
    """The threads that run ``owner.name`` from now on (recorded as they call it)."""
    seen: set[int] = set()
    real = getattr(owner, name)

    def recording(*args, **kwargs):
        seen.add(threading.get_ident())
        time.sleep(0.01)  # long enough for a second thread to take the next task
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return seen


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to see a second one used")
def test_forest_is_shown_as_the_book_names_it_and_grows_its_trees_on_every_core(
    small_data, monkeypatch
) -> None:
    assert repr(models.random_forest()) == "RandomForestClassifier(random_state=42)"
    X, X_test, y, _ = small_data
    forest = models.random_forest().set_params(n_estimators=10)
    threads = threads_used(monkeypatch, _forest, "_parallel_build_trees")
    parallel = models.fit_predict(forest, X, y, X_test)
    assert len(threads) > 1
    threads.clear()
    models.cross_val_output(forest, X, y, method="predict_proba")
    assert len(threads) > 1
    threads.clear()
    kept = models.fitted(forest.set_params(n_estimators=11), X, y)
    assert len(threads) > 1
    assert kept.n_jobs is None  # it answers later as the estimator asked for
    serial = forest.set_params(n_estimators=10, n_jobs=1).fit(X, y).predict(X_test)
    np.testing.assert_array_equal(parallel, serial)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to see a second one used")
def test_sgd_on_ten_classes_fits_its_binary_models_side_by_side(small_data, monkeypatch) -> None:
    X, _, y, _ = small_data
    threads = threads_used(monkeypatch, _stochastic_gradient, "fit_binary")
    spread = models.cross_val_output(fast_sgd(), X, y)
    assert len(threads) > 1
    with joblib.parallel_config(n_jobs=1):
        alone = cross_val_predict(fast_sgd(), X, y, cv=3)
    np.testing.assert_array_equal(spread, alone)
    assert models.spreading_param(fast_sgd(), y == "5") is None  # one binary model: folds instead
    # an ensemble that grows its members one after the other has no n_jobs to set
    assert models.spreading_param(GradientBoostingClassifier(), y) is None


def test_cached_results_print_the_same_whether_computed_or_read(small_data) -> None:
    """A fit that stops at max_iter warns when computed; from the cache it could not: neither."""
    X, _, y, _ = small_data
    estimator = SGDClassifier(random_state=42, max_iter=2)
    for _ in range(2):  # computed, then read from the cache
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            models.cross_val_output(estimator, X, y)
            models.fit_predict(estimator, X, y, X[:5])


def test_an_edited_features_module_opens_a_fresh_cache(small_data, count_fits, monkeypatch) -> None:
    """Functions referenced by estimators are keyed by name only; the source digest covers them."""
    X, _, y, _ = small_data
    models.cross_val_output(fast_sgd(), X, y == "5", method="decision_function")
    monkeypatch.setattr(models, "SOURCE_DIGEST", "an edited features.py")
    models.memory.cache_clear()
    models.cross_val_output(fast_sgd(), X, y == "5", method="decision_function")
    assert len(count_fits) == 2


def test_a_damaged_cache_entry_is_recomputed_silently(
    small_data, count_fits, capfd, caplog
) -> None:
    X, _, y, _ = small_data
    first = models.cross_val_output(fast_sgd(), X, y, method="decision_function")
    capfd.readouterr()
    (entry,) = Path(models.memory().location).rglob("output.pkl")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a full disk or a killed run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = models.cross_val_output(fast_sgd(), X, y, method="decision_function")
    assert capfd.readouterr() == ("", "")
    assert caplog.records == [], "joblib's report would reach the notebook's output"
    assert len(count_fits) == 2, "the damaged entry was recomputed"
    np.testing.assert_array_equal(first, again)
    models.cross_val_output(fast_sgd(), X, y, method="decision_function")
    assert len(count_fits) == 2, "and stored again"
