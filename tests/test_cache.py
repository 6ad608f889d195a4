"""The disk cache: scikit-learn's results as it gives them, computed once, never stale."""

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
def small_data(fixture_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """600 training images of the fixture, and whether each is a 5."""
    X, _, y, _ = load_mnist(600, fixture=fixture_file)
    return X, y == "5"


def sgd(alpha: float = 1e-4) -> SGDClassifier:
    """A quick, seeded SGD classifier."""
    return SGDClassifier(alpha=alpha, random_state=42, max_iter=20, tol=None)


def counted(calls: list[int]):
    """Cross-validated decision scores through the cache, recording each real computation."""

    def scores(estimator, X, y):
        calls.append(1)
        return cross_val_predict(estimator, X, y, cv=3, method="decision_function")

    return cache.cached(scores)


def test_a_result_is_recomputed_only_when_stale(small_data, caplog, monkeypatch) -> None:
    """scikit-learn's result, computed again for new inputs, a damaged entry or a new key only."""
    X, y = small_data
    calls: list[int] = []
    scores = counted(calls)
    first = scores(sgd(), X, y)
    direct = cross_val_predict(sgd(), X, y, cv=3, method="decision_function")
    np.testing.assert_array_equal(first, direct)
    (entry,) = settings.cache_dir().rglob("output.pkl")
    stored = bytearray(entry.read_bytes())
    stored[-20] ^= 0x80  # one bit of the stored result flipped
    entry.write_bytes(stored)
    np.testing.assert_array_equal(scores(sgd(), X, y), first)
    assert "incorrect data check" in caplog.text or "Exception while loading" in caplog.text
    np.testing.assert_array_equal(scores(sgd(), X, y), first)
    assert len(calls) == 2, "computed again once, then read back"
    scores(sgd(alpha=1e-3), X, y)
    X_changed = X.copy()
    X_changed[0, 0] ^= 1
    scores(sgd(), X_changed, y)
    assert len(calls) == 4, "another parameter, one changed pixel"
    assert f"pillow-{PIL.__version__}" in cache.cache_key()  # its resampling draws digits
    assert "stats.py" in cache.KEYED_SOURCES and "multilabel.py" not in cache.KEYED_SOURCES
    monkeypatch.setitem(cache.LIBRARY_VERSIONS, "pillow", "0.0-other")
    scores(sgd(), X, y)
    assert len(calls) == 5, "a new key computes again"
    folders = (settings.cache_dir() / "joblib").iterdir()
    assert [folder.name for folder in folders] == [cache.cache_key()], "older keys pruned"


def test_processes_compute_one_call_once_even_if_its_file_moves(tmp_path, monkeypatch) -> None:
    """Two processes asking for one call: one computes, one reads; so does a moved module."""
    module, calls = tmp_path / "slow_work.py", tmp_path / "calls.txt"
    module.write_text(
        "import os, time\n\n\ndef compute(n):\n"
        "    with open(os.environ['CALLS_FILE'], 'a') as calls:\n"
        "        calls.write('computed\\n')\n"
        "    time.sleep(2)\n    return n * n\n"
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
    module.write_text("# a new first line\n\n" + module.read_text())
    assert compute(12) == 144
    assert calls.read_text() == "computed\n", "read back, never computed again"


def test_a_key_folder_another_process_makes_at_once_is_used(tmp_path, monkeypatch) -> None:
    """Two notebooks start together: the other makes the folder between the check and mkdir."""

    class Racing(type(tmp_path)):
        def is_dir(self) -> bool:
            return super().is_dir() or bool(self.mkdir(parents=True, exist_ok=True))

    monkeypatch.setattr(settings, "cache_dir", lambda: Racing(tmp_path))
    assert cache.memory().location is not None, "results kept, no warning that they are not"
