"""The disk cache: scikit-learn's results as it gives them, computed once, never stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_val_predict

from mnist_study import cache, settings
from mnist_study.data import load_mnist


@pytest.fixture(scope="module")
def small_data(fixture_file: Path) -> tuple[np.ndarray, ...]:
    """600 training images of the fixture and their test share, with their labels."""
    return load_mnist(600, fixture=fixture_file)


def fast_sgd(**params) -> SGDClassifier:
    """A quick, seeded SGD classifier."""
    return SGDClassifier(random_state=42, max_iter=20, tol=None, **params)


def counted(calls: list[int]):
    """``cross_val_predict`` through the cache, recording each real computation."""

    def cross_val_predict_counted(estimator, X, y, **kwargs):
        calls.append(1)
        return cross_val_predict(estimator, X, y, **kwargs)

    return cache.cached(cross_val_predict_counted)


def test_a_result_is_scikit_learns_computed_once_and_keyed_by_parameters_and_data(
    small_data,
) -> None:
    """The same call is read back; another parameter or one changed pixel computes again."""
    X, _, y, _ = small_data
    calls: list[int] = []
    cvp = counted(calls)
    first = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    direct = cross_val_predict(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    np.testing.assert_array_equal(first, direct)
    np.testing.assert_array_equal(
        cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function"), first
    )
    assert len(calls) == 1
    cvp(fast_sgd(alpha=1e-3), X, y == "5", cv=3, method="decision_function")
    assert len(calls) == 2
    X_changed = X.copy()
    X_changed[0, 0] ^= 1
    cvp(fast_sgd(), X_changed, y == "5", cv=3, method="decision_function")
    assert len(calls) == 3


def test_a_new_key_opens_a_fresh_folder_and_removes_the_older(small_data, monkeypatch) -> None:
    """The key: the libraries' versions (Pillow's too) and the modules run inside cached calls."""
    assert f"pillow-{PIL.__version__}" in cache.cache_key()
    assert "stats.py" in cache.KEYED_SOURCES and "multilabel.py" not in cache.KEYED_SOURCES
    X, _, y, _ = small_data
    cache.fit(fast_sgd(), X, y == "5")
    before = cache.cache_key()
    monkeypatch.setitem(cache.LIBRARY_VERSIONS, "pillow", "0.0-other")
    assert cache.cache_key() != before
    cache.fit(fast_sgd(), X, y == "5")
    folders = (settings.cache_dir() / "joblib").iterdir()
    assert [folder.name for folder in folders] == [cache.cache_key()]


@pytest.mark.parametrize("damage", ["a flipped bit", "random bytes"])
def test_a_damaged_entry_is_computed_again_never_used(small_data, caplog, damage) -> None:
    """A stored result changed on disk fails its checksum: computed again and kept anew."""
    X, _, y, _ = small_data
    calls: list[int] = []
    cvp = counted(calls)
    first = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    (entry,) = settings.cache_dir().rglob("output.pkl")
    stored = bytearray(entry.read_bytes())
    if damage == "a flipped bit":
        stored[-20] ^= 0x80
    else:
        stored[len(stored) // 2 : len(stored) // 2 + 64] = os.urandom(64)
    entry.write_bytes(stored)
    again = cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    assert "incorrect data check" in caplog.text or "Exception while loading" in caplog.text
    np.testing.assert_array_equal(again, first)
    cvp(fast_sgd(), X, y == "5", cv=3, method="decision_function")
    assert len(calls) == 2, "computed again once, then kept"


def test_processes_asking_for_one_call_compute_it_once_even_after_its_module_file_moves(
    tmp_path, monkeypatch
) -> None:
    """Two processes asking for one call: one computes, one reads; moved lines delete no result."""
    module, calls = tmp_path / "slow_work.py", tmp_path / "calls.txt"
    module.write_text(
        "import os, time\n\n\ndef compute(n):\n"
        "    with open(os.environ['CALLS_FILE'], 'a') as calls:\n"
        "        calls.write('computed\\n')\n"
        "    time.sleep(2)\n"
        "    return n * n\n"
    )
    caller = (  # each says it is ready, then waits for the other before asking
        "import sys, time\nfrom pathlib import Path\nfrom mnist_study.cache import cached\n"
        "import slow_work\nPath(sys.argv[1]).touch()\n"
        "while not all(Path(p).exists() for p in sys.argv[2:]):\n    time.sleep(0.01)\n"
        "print(cached(slow_work.compute)(12))\n"
    )
    monkeypatch.setenv("CALLS_FILE", str(calls))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}  # this copy
    ready = [str(tmp_path / f"ready-{n}") for n in range(2)]
    command = [sys.executable, "-c", caller]
    with subprocess.Popen([*command, ready[0], *ready], env=env, stdout=subprocess.PIPE) as first:
        second = subprocess.run([*command, ready[1], *ready], env=env, capture_output=True)
        assert first.communicate(timeout=120)[0] == second.stdout == b"144\n", second.stderr
    assert calls.read_text() == "computed\n"
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_work

    compute = cache.cached(slow_work.compute)
    assert compute(12) == 144
    module.write_text("# a new first line\n\n" + module.read_text())
    assert compute(12) == 144
    assert calls.read_text() == "computed\n", "read back each time, never computed again"
