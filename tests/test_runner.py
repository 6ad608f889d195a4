"""The runner, through make as a person runs it, on a miniature project in smoke mode."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.paths import KERNEL_ENVIRONMENT, NOTEBOOK_DIR, README_FIGURE_DIR, ROOT

DATA_DIR = os.environ.get("MNIST_STUDY_DATA_DIR")  # the person's own, before the tests' isolation
NOTHING = "nothing to run: no notebook's code, the library, the lock file or the data changed\n"
FIGURE = "from pathlib import Path\nPath(figure_dir, '{0}.png').write_bytes(b'png {0}')"
WAIT = "import pathlib, time\nwhile not pathlib.Path(r'{0}').exists():\n    time.sleep(0.05)"
CHILD = (
    "import subprocess, sys\nfrom pathlib import Path\nchild = subprocess.Popen([sys.executable, "
)
CHILD += "'-c', 'import time; time.sleep(300)'])\nPath(r'{0}').write_text(str(child.pid))"
# joblib's workers memory-map an array in /dev/shm; a child runs in a session of its own
WORKERS = """import os, subprocess, sys, threading, time
import numpy as np
from pathlib import Path
from joblib import Parallel, delayed
arrays = [np.zeros(1000)] * 2
work = lambda: Parallel(n_jobs=2, max_nbytes=1)(delayed(time.sleep)(300 + a[0]) for a in arrays)
threading.Thread(target=work, daemon=True).start()
while not list(Path('/dev/shm').glob(f'joblib_memmapping_folder_{os.getpid()}_*')):
    time.sleep(0.1)
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)
Path(r'%s').write_text(str(os.getpid()))"""


def write(path: Path, *sources: str) -> None:
    """A notebook: a section heading, its parameters cell, then code cells."""
    parameters = new_code_cell("sample = None\nfixture = None\nfigure_dir = '.'")
    parameters.metadata["tags"] = ["parameters"]
    notebook = new_notebook(cells=[new_markdown_cell("## The section"), parameters])
    notebook.cells += map(new_code_cell, sources)
    notebook.metadata["kernelspec"] = dict(name="python3", display_name="Py", language="python")
    nbformat.write(notebook, path)


def snapshot(*folders: Path) -> dict[str, str]:
    files = (path for folder in folders for path in sorted(folder.rglob("*")) if path.is_file())
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def ours(folder: Path) -> list[psutil.Process]:
    """The processes whose command line or working folder (a kernel's child) names ``folder``."""
    found = []
    for process in psutil.process_iter():
        try:
            if str(folder) in " ".join([process.cwd(), *process.cmdline()]):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two notebooks that write one figure each; afterwards, no process of its runs is left."""
    (tmp_path / "notebooks").mkdir()
    for name in ("01_first", "02_second"):
        write(tmp_path / "notebooks" / f"{name}.ipynb", FIGURE.format(name))
    yield tmp_path
    for process in ours(tmp_path):
        process.kill()


def make(project: Path, *args: str, data: bool = False, **popen: object) -> subprocess.Popen[str]:
    """``make ARGS`` on ``project``'s notebooks and build folder; with ``data``, the full data."""
    env = {key: value for key, value in os.environ.items() if key != "MNIST_STUDY_RUN"}
    env["MNIST_STUDY_CACHE_DIR"] = str(project / "cache")
    if data:  # the person's folder, else the project's data/
        env.pop("MNIST_STUDY_DATA_DIR", None)
        env.update({"MNIST_STUDY_DATA_DIR": DATA_DIR} if DATA_DIR else {})
    folders = [f"NOTEBOOK_DIR={project}/notebooks", f"BUILD_DIR={project}/build", "PROGRESS=1"]
    return subprocess.Popen(["make", "--no-print-directory", *args, *folders], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True, **popen)  # fmt: skip


def ended(process: subprocess.Popen[str], seconds: float = 180) -> tuple[int, str]:
    """The status of ``process`` and what it said, once it ended."""
    err = process.communicate(timeout=seconds)[1]
    return process.returncode, err


def wait_for(markers: list[Path], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300  # a busy machine
    while not all(marker.exists() for marker in markers):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the notebooks never started"
        time.sleep(0.1)


def wait_until_gone(pids: set[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.2)


def test_a_notebook_runs_again_only_when_what_it_depends_on_changed(project: Path) -> None:
    """Side by side, normalised, placed with its figure; then only what changed, in seconds."""
    notebooks, smoke = project / "notebooks", project / "build" / "smoke"
    for mine, other in (("01_first", "02_second"), ("02_second", "01_first")):
        overlap = f"Path('{mine}.started').touch()\n" + WAIT.format(f"{other}.started")
        chunks = "import time\nprint('a', flush=True)\ntime.sleep(0.5)\nprint('b')"  # two messages
        environment = "import os\nprint(os.environ.get('MALLOC_MMAP_THRESHOLD_'))"
        long = "# Fitting the forest\ntime.sleep(2.5)"
        write(notebooks / f"{mine}.ipynb", FIGURE.format(mine), overlap, chunks, environment, long)
    status, err = ended(make(project, "smoke"))
    assert status == 0 and "ran 2 notebook(s)" in err, err
    assert (smoke / "readme_images" / "02_second.png").read_bytes() == b"png 02_second"
    assert "02_second [6/6] The section › Fitting the forest" in err
    assert re.search(r"^02_second \[6/6\] still running, [123] s$", err, re.M), "seen alive"
    text = (smoke / "notebooks" / "01_first.ipynb").read_text()
    code = json.loads(text)["cells"][1:]
    assert [cell["execution_count"] for cell in code] == [1, 2, 3, 4, 5, 6], "no injected cell"
    assert code[3]["outputs"] == [
        {"name": "stdout", "output_type": "stream", "text": ["a\n", "b\n"]}
    ]
    assert code[4]["outputs"][0]["text"] == [f"{KERNEL_ENVIRONMENT['MALLOC_MMAP_THRESHOLD_']}\n"]
    assert not {"papermill", "widgets"} & set(json.loads(text)["metadata"])
    assert "version" not in json.loads(text)["metadata"]["language_info"]
    assert all(set(cell["metadata"]) <= {"tags"} for cell in json.loads(text)["cells"])
    assert str(project) not in text
    first, started = snapshot(smoke), time.monotonic()
    assert ended(make(project, "smoke")) == (0, NOTHING) and time.monotonic() - started < 30
    status, err = ended(make(project, "smoke", "RERUN=1", "NOTEBOOKS=01_first.ipynb", "JOBS=1"))
    assert status == 0 and "ran 1 notebook(s)" in err, err
    same = {key: value for key, value in first.items() if "01_first" in key}
    assert same.items() <= snapshot(smoke).items(), "the same bytes again"
    source = nbformat.read(notebooks / "01_first.ipynb", as_version=4)
    source.cells[0].source = "## A new title"  # a heading is no code
    nbformat.write(source, notebooks / "01_first.ipynb")
    source = nbformat.read(notebooks / "02_second.ipynb", as_version=4)
    source.cells = [cell for cell in source.cells if "started" not in cell.source]
    source.cells.append(new_code_cell("print('added')"))  # a new cell is
    nbformat.write(source, notebooks / "02_second.ipynb")
    status, err = ended(make(project, str(smoke / "notebooks" / "02_second.ipynb")))
    assert status == 0 and "ran 1 notebook(s)" in err and "01_first" not in err, err
    assert "added" in (smoke / "notebooks" / "02_second.ipynb").read_text()


@pytest.mark.full_data
def test_make_figures_fetches_the_data_then_writes_each_notebook_over_itself(project) -> None:
    figures = f"FIGURE_DIR={project / 'readme_images'}"
    status, err = ended(make(project, "figures", figures, data=True))
    assert status == 0 and "ran 2 notebook(s)" in err, err
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"png 02_second"
    notebook = nbformat.read(project / "notebooks" / "02_second.ipynb", as_version=4)
    assert [cell.execution_count for cell in notebook.cells[1:]] == [1, 2]
    assert ended(make(project, "figures", figures, data=True))[1].endswith(NOTHING)


def test_failures_are_named_and_what_succeeded_beside_them_is_placed(project: Path) -> None:
    """A failing cell, an unreadable file, a dying kernel: four notebooks at once (JOBS=4)."""
    marker, notebooks = project / "child.pid", project / "notebooks"
    write(notebooks / "01_first.ipynb", CHILD.format(marker), WAIT.format("second.done"), "1 / 0")
    write(notebooks / "02_second.ipynb", WAIT.format(marker), "pathlib.Path('second.done').touch()")
    (notebooks / "03_unreadable.ipynb").write_text("{ not a notebook")
    write(notebooks / "04_kernel_dies.ipynb", "import os\nos._exit(1)")
    status, err = ended(make(project, "smoke", "JOBS=4"))
    assert status != 0
    assert "01_first.ipynb failed in cell [4] (`1 / 0`): ZeroDivisionError: division by zero" in err
    kept = project / "build" / "runs" / "smoke" / "01_first" / "01_first.ipynb"
    assert f"Nothing of it was placed; what ran is kept in {kept}. Fix the cell" in err
    assert "1 / 0" in kept.read_text()
    for name, failure in (("03_unreadable", "NotJSONError"), ("04_kernel_dies", "DeadKernelError")):
        assert f"{name}.ipynb failed outside its cells: {failure}" in err
    assert err.count("not a cell's failure") == 2 and err.count("Fix the cell") == 1
    placed = project / "build" / "smoke" / "notebooks"
    assert [path.name for path in placed.iterdir()] == ["02_second.ipynb"]
    wait_until_gone({int(marker.read_text())}, seconds=10)


def running_pair(project: Path, **popen: object) -> tuple[subprocess.Popen[str], set[int], str]:
    """Both notebooks running until ``release`` exists, the first with workers: make, the run's
    processes, the kernel's PID."""
    markers = [project / f"{name}.running" for name in ("01_first", "02_second")]
    for marker in markers:
        waiting = f"{CHILD.format(marker)}\n{WAIT.format(project / 'release')}"
        workers = [WORKERS % (project / "kernel")] if marker == markers[0] else []
        notebook = project / "notebooks" / f"{marker.stem}.ipynb"
        write(notebook, FIGURE.format(marker.stem), *workers, waiting)
    process = make(project, "smoke", start_new_session=True, **popen)
    wait_for([*markers, project / "kernel"], process)
    time.sleep(0.5)  # the child in its own session has started
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    assert {int(marker.read_text()) for marker in markers} <= family
    kernel = (project / "kernel").read_text()
    assert list(Path("/dev/shm").glob(f"*{kernel}*")), "joblib's files are there"
    return process, family, kernel


def test_one_run_at_a_time_no_clean_and_no_install_during_it(project: Path) -> None:
    """The lock is held all the run long: a second run, a clean, an install are refused."""
    (project / "cache" / "joblib").mkdir(parents=True)
    first, _, _ = running_pair(project)
    before = snapshot(project / "build", project / "cache")
    install = ["-W", "src/mnist_study/__init__.py", ".venv/.installed"]
    for attempt in (["smoke"], ["clean"], install):
        status, err = ended(make(project, *attempt))
        assert status != 0 and "run.lock is held" in err, attempt
    assert snapshot(project / "build", project / "cache") == before
    (project / "release").touch()
    assert ended(first)[0] == 0
    assert ended(make(project, "clean"))[0] == 0
    assert not (project / "cache").exists(), "MNIST_STUDY_CACHE_DIR's cache is emptied"
    assert [path.name for path in (project / "build").iterdir()] == ["run.lock"]


STOPS = {  # what stops the run, and the signal it says
    "ctrl-c": (lambda make, holder, notebook: os.killpg(make.pid, signal.SIGINT), "SIGINT"),
    "int-to-make-alone": (lambda make, holder, notebook: make.send_signal(signal.SIGINT), "SIGINT"),
    "term-to-make": (lambda make, holder, notebook: make.send_signal(signal.SIGTERM), "SIGTERM"),
    "hup-to-make-alone": (lambda make, holder, notebook: make.send_signal(signal.SIGHUP), "SIGHUP"),
    "sigkill-to-make": (lambda make, holder, notebook: make.kill(), None),
    "sigkill-to-the-lock-holder": (lambda make, holder, notebook: holder.kill(), None),
    "sigkill-to-a-notebooks-process": (lambda make, holder, notebook: notebook.kill(), None),
}


@pytest.mark.parametrize("stop", STOPS)
def test_a_stop_ends_every_process_of_the_run_within_seconds(project: Path, stop: str) -> None:
    """Every kernel, worker and child ends, /dev/shm is swept; a signal places nothing."""
    process, family, kernel = running_pair(project)
    (holder,) = psutil.Process(process.pid).children()
    notebook = next(p for p in holder.children(True) if "tools.execute" in " ".join(p.cmdline()))
    started = time.monotonic()
    action, name = STOPS[stop]
    action(process, holder, notebook)
    if name is None:  # the other notebook may end: make lets it finish
        (project / "release").touch()
    status, err = ended(process, seconds=60)
    wait_until_gone(family, seconds=30)
    assert time.monotonic() - started < 30, "within seconds, on a busy machine too"
    assert list(Path("/dev/shm").glob(f"*{kernel}*")) == []
    assert ours(project) == [], "none left"
    if stop == "sigkill-to-make":  # named as what it is, not as a hang-up
        assert f"interrupted (the make that started it (PID {process.pid}) has ended)" in err
    if name:
        assert status != 0 and "Traceback" not in err
        assert f"interrupted ({name}): none had finished; no notebook was half-placed." in err
        assert not list((project / "build" / "smoke").rglob("*.*")), "nothing placed"
        assert not (project / "build" / "runs" / "smoke" / "01_first").exists(), "no scratch left"


def test_a_hang_up_that_nohup_ignores_stays_ignored(project: Path) -> None:
    """`nohup make smoke &`, then the terminal closes: a SIGHUP to the group changes nothing."""
    process, _, _ = running_pair(
        project, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
    )
    os.killpg(process.pid, signal.SIGHUP)
    time.sleep(1)
    (project / "release").touch()
    status, err = ended(process)
    assert status == 0 and "interrupted" not in err and "ran 2 notebook(s)" in err, err


def test_an_environment_whose_creation_was_interrupted_is_created_again(tmp_path: Path) -> None:
    """A .venv without pip (Ctrl-C inside ensurepip): the next make creates it again."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    command = ["make", f"VENV={venv}", f"PYTHON={sys.executable}", "PIP=true"]
    command.append(f"{venv}/.installed-deps")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"]).returncode == 0


@pytest.mark.smoke
def test_smoke_run_of_the_study_notebooks() -> None:
    """Every notebook runs on the fixture through make and writes into build/smoke only."""
    before = snapshot(NOTEBOOK_DIR, README_FIGURE_DIR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_STUDY_")}
    result = subprocess.run(["make", "--no-print-directory", "smoke", "RERUN=1"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert snapshot(NOTEBOOK_DIR, README_FIGURE_DIR) == before
    smoke = ROOT / "build" / "smoke"
    executed = sorted(p.name for p in (smoke / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    for path in (smoke / "notebooks").glob("*.ipynb"):
        for cell in (c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"):
            assert cell.execution_count is not None, f"{path.name}: unexecuted cell"
            assert all(o.output_type != "error" for o in cell.outputs), path.name
    sources = " ".join(path.read_text() for path in NOTEBOOK_DIR.glob("*.ipynb"))
    drawn = {p.name for p in README_FIGURE_DIR.glob("*.png") if f'{p.name}\\"' in sources}
    assert drawn and drawn <= {p.name for p in (smoke / "readme_images").glob("*.png")}
