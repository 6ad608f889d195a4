"""The disk cache: scikit-learn's results as it gives them, computed once, never stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from mnist_study import cache, settings
from mnist_study.data import load_mnist


@pytest.fixture
def cache_dir() -> Path:
    """The test's own empty cache folder (conftest.py sets it)."""
    return settings.cache_dir()


@pytest.fixture(scope="module")
def small_data(fixture_file: Path) -> tuple[np.ndarray, ...]:
    return load_mnist(600, fixture=fixture_file)


def fast_sgd(**params) -> SGDClassifier:
    return SGDClassifier(random_state=42, max_iter=20, tol=None, **params)


def counting(calls: list[int]):
    """``cross_val_predict`` that records each real computation."""

    def cross_val_predict_counted(estimator, X, y, **kwargs):
        calls.append(1)
        return cross_val_predict(estimator, X, y, **kwargs)

    return cross_val_predict_counted


def test_a_cached_call_returns_what_scikit_learn_returns(cache_dir, small_data) -> None:
    X, _, y, _ = small_data
    direct = cross_val_predict(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    through = cache.cached(cross_val_predict)(
        fast_sgd(), X, y == "5", cv=3, method="decision_function"
    )
    np.testing.assert_array_equal(through, direct)


def test_results_are_kept_and_keyed_by_parameters_and_data(cache_dir, small_data) -> None:
    X, _, y, _ = small_data
    calls: list[int] = []
    cvp = cache.cached(counting(calls))
    first = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    again = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    np.testing.assert_array_equal(first, again)
    assert len(calls) == 1
    cvp(fast_sgd(alpha=1e-3), X, y == "5", cv=3, method="decision_function")
    assert len(calls) == 2
    X_changed = X.copy()
    X_changed[0, 0] ^= 1
    cvp(fast_sgd(), X_changed, y == "5", cv=3, method="decision_function")
    assert len(calls) == 3


def test_fit_returns_a_fitted_copy_and_keeps_it(cache_dir, small_data) -> None:
    X, X_test, y, _ = small_data
    model = fast_sgd()
    fitted = cache.fit(model, X, y == "5")
    assert not hasattr(model, "coef_"), "the estimator passed in stays as it was"
    np.testing.assert_array_equal(fitted.coef_, fast_sgd().fit(X, y == "5").coef_)
    np.testing.assert_array_equal(
        cache.predict(fitted, X_test), fast_sgd().fit(X, y == "5").predict(X_test)
    )
    assert len(list(cache_dir.rglob("output.pkl"))) == 2


def test_an_upgrade_opens_a_fresh_folder_and_removes_the_older(
    cache_dir, small_data, monkeypatch
) -> None:
    X, _, y, _ = small_data
    cache.fit(fast_sgd(), X, y == "5")
    before = cache.cache_key()
    monkeypatch.setitem(cache.LIBRARY_VERSIONS, "pillow", "0.0-other")
    assert cache.cache_key() != before
    cache.fit(fast_sgd(), X, y == "5")
    assert [folder.name for folder in (cache_dir / "joblib").iterdir()] == [cache.cache_key()]


def test_the_key_holds_pillow_and_the_sources_run_inside_cached_calls() -> None:
    assert "pillow" in cache.LIBRARY_VERSIONS
    assert "stats.py" in cache.KEYED_SOURCES, "stats.recall_at_precision scores a cached fit"
    assert "multilabel.py" not in cache.KEYED_SOURCES, "no cached call runs its code"


def test_the_folder_is_read_when_asked(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert Path(cache.memory().location).parent == tmp_path / "elsewhere" / "joblib"


def damage(entry: Path, how: str) -> None:
    """Flip one bit of a cached result, or write random bytes over part of it."""
    data = bytearray(entry.read_bytes())
    if how == "bit":
        data[-20] ^= 0x80
    else:
        data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    entry.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["bit", "bytes"])
def test_a_damaged_entry_is_computed_again_never_used(cache_dir, small_data, how, caplog) -> None:
    X, _, y, _ = small_data
    calls: list[int] = []
    cvp = cache.cached(counting(calls))
    first = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    (entry,) = cache_dir.rglob("output.pkl")
    damage(entry, how)
    again = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    assert "incorrect data check" in caplog.text or "Exception while loading" in caplog.text
    assert len(calls) == 2
    np.testing.assert_array_equal(again, first)
    assert cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function") is not None
    assert len(calls) == 2, "the entry computed again was kept"


def test_a_cache_folder_that_cannot_be_created_computes_with_one_warning_naming_it(
    small_data, monkeypatch, tmp_path
) -> None:
    X, _, y, _ = small_data
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(tmp_path / "a-file" / "cache"))
    with pytest.warns(cache.CacheNotWritten, match="a-file") as record:
        for _ in range(2):
            result = cache.cached(cross_val_predict)(fast_sgd(), X, y == "5", cv=3)
    assert len(result) == len(y)
    assert len([w for w in record if w.category is cache.CacheNotWritten]) == 1


def test_processes_asking_for_the_same_call_compute_it_once(tmp_path) -> None:
    """Two notebooks running side by side and needing one result: one computes, one waits."""
    (tmp_path / "slow_work.py").write_text(
        "import os, time\n"
        "def compute(n):\n"
        "    with open(os.environ['CALLS_FILE'], 'a') as calls:\n"
        "        calls.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(2)\n"
        "    return n * n\n"
    )
    caller = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mnist_study.cache import cached\n"
        "import slow_work\n"
        "Path(sys.argv[1]).touch()\n"
        "while not all(Path(p).exists() for p in sys.argv[2:]):\n"
        "    time.sleep(0.01)\n"
        "print(cached(slow_work.compute)(12))\n"
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
    name = cache.lock_name(cross_val_predict, (sgd, a), {"cv": 3})
    assert name == cache.lock_name(cross_val_predict, (sgd, b), {"cv": 3})
    assert name != cache.lock_name(cross_val_predict, (fast_sgd(alpha=1), a), {"cv": 3})
    assert name != cache.lock_name(cross_val_predict, (sgd, a), {"cv": 5})


def test_lock_names_do_not_read_a_fitted_models_arrays() -> None:
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    unfitted = KNeighborsClassifier(n_neighbors=3)
    fitted = clone(unfitted).fit(X, y)
    assert cache.lock_name(cache.predict, (fitted, X), {}) == cache.lock_name(
        cache.predict, (unfitted, X), {}
    )
    assert cache.lock_name(cache.predict, (fitted, X), {}) != cache.lock_name(
        cache.predict, (KNeighborsClassifier(n_neighbors=5), X), {}
    )


def test_a_module_file_replaced_under_a_running_process_keeps_its_results(
    cache_dir, tmp_path, monkeypatch
) -> None:
    module = tmp_path / "replaced_module.py"
    module.write_text("CALLS = []\n\n\ndef square(x):\n    CALLS.append(x)\n    return x * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    computed_elsewhere = "from mnist_study import cache; import replaced_module as m; "
    computed_elsewhere += "print(cache.cached(m.square)(12))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    subprocess.run([sys.executable, "-c", computed_elsewhere], check=True, env=env)
    import replaced_module

    square = cache.cached(replaced_module.square)
    assert square(12) == 144
    # the same function, moved down by a reinstall while this process runs
    module.write_text("# a new first line\n\n" + module.read_text())
    assert square(12) == 144
    assert replaced_module.CALLS == [], "read back both times, never computed again"
