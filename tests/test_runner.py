"""The runner, through make as a person runs it, on a miniature project in smoke mode."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.execute import normalise_notebook
from tools.paths import KERNEL_ENVIRONMENT, NOTEBOOK_DIR, README_FIGURE_DIR, ROOT

Make = Callable[..., subprocess.Popen[str]]
DATA_DIR = os.environ.get("MNIST_STUDY_DATA_DIR")  # the person's own, before the tests' isolation
PARAMETERS = "sample = None\nfixture = None\nfigure_dir = '.'"
FIGURE = "from pathlib import Path\nPath(figure_dir, '{0}.png').write_bytes(b'png {0}')"


def write_notebook(path: Path, *sources: str) -> None:
    """A notebook: a section heading, its parameters cell, then code cells."""
    notebook = new_notebook(cells=[new_markdown_cell("## The section"), new_code_cell(PARAMETERS)])
    notebook.cells += map(new_code_cell, sources)
    notebook.cells[1].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(notebook, path)


def snapshot(*folders: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def waiting_cell(marker: Path, until: str = "False") -> str:
    """A cell that starts a child process (its PID in ``marker``), then waits for ``until``."""
    return (
        "import subprocess, sys, time\nfrom pathlib import Path\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"Path(r'{marker}').write_text(str(child.pid))\n"
        f"while not ({until}):\n    time.sleep(0.1)"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two notebooks that write one figure each, run with make smoke into ``build/smoke``."""
    (tmp_path / "notebooks").mkdir()
    for name in ("01_first", "02_second"):
        write_notebook(tmp_path / "notebooks" / f"{name}.ipynb", FIGURE.format(name))
    return tmp_path


@pytest.fixture
def make(project: Path) -> Iterator[Make]:
    """Start make on ``project``; afterwards, pass or fail, end every process the runs started."""
    started: list[subprocess.Popen[str]] = []
    env = {key: value for key, value in os.environ.items() if key != "MNIST_STUDY_RUN"}
    env["MNIST_STUDY_CACHE_DIR"] = str(project / "cache")

    def start(*args: str, data: bool = False, **popen: object) -> subprocess.Popen[str]:
        folders = [f"NOTEBOOK_DIR={project}/notebooks", f"BUILD_DIR={project}/build"]
        if data:  # the full dataset: the person's folder, else the project's data/
            env.pop("MNIST_STUDY_DATA_DIR", None)
            env.update({"MNIST_STUDY_DATA_DIR": DATA_DIR} if DATA_DIR else {})
        command = ["make", "--no-print-directory", *args, *folders, "PROGRESS=1"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, **popen
        )
        started.append(process)
        return process

    yield start
    ours = [psutil.Process(p.pid) for p in started if psutil.pid_exists(p.pid)]
    ours += [child for process in ours for child in process.children(recursive=True)]
    for process in psutil.process_iter(["cmdline"]):
        if str(project) in " ".join([cwd(process), *(process.info["cmdline"] or [])]):
            ours.append(process)
    for process in ours:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(ours, timeout=10)
    for process in started:
        process.communicate()


def finished(process: subprocess.Popen[str], seconds: float = 180) -> tuple[int, str]:
    _, err = process.communicate(timeout=seconds)
    return process.returncode, err


def wait_for(markers: list[Path], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not all(marker.exists() for marker in markers):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the notebooks never started"
        time.sleep(0.1)


def wait_until_gone(pids: set[int], seconds: float) -> None:
    """Wait until none of the processes runs (a zombie has ended)."""
    deadline = time.monotonic() + seconds
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.2)


def test_a_notebook_runs_again_only_when_what_it_depends_on_changed(
    project: Path, make: Make
) -> None:
    """Side by side, normalised, placed with its figure; then only what changed, in seconds."""
    notebooks, smoke = project / "notebooks", project / "build" / "smoke"
    for mine, other in (("01_first", "02_second"), ("02_second", "01_first")):
        overlap = f"Path('{mine}.started').touch()\nimport time\n"
        overlap += f"while not Path('{other}.started').exists():\n    time.sleep(0.05)"
        environment = "import os\nprint(os.environ.get('MALLOC_MMAP_THRESHOLD_'))"
        long = "# Fitting the forest\nimport time\ntime.sleep(2.5)"
        cells = [FIGURE.format(mine), overlap, environment, *[long][: mine == "02_second"]]
        write_notebook(notebooks / f"{mine}.ipynb", *cells)
    status, err = finished(make("smoke"))
    assert status == 0, err
    assert "ran 2 notebook(s)" in err
    assert (smoke / "readme_images" / "02_second.png").read_bytes() == b"png 02_second"
    assert "02_second [5/5] The section › Fitting the forest" in err
    assert re.search(r"^02_second \[5/5\] still running, [123] s$", err, re.M), "seen alive"
    text = (smoke / "notebooks" / "01_first.ipynb").read_text()
    notebook = json.loads(text)
    code = notebook["cells"][1:]
    assert [cell["execution_count"] for cell in code] == [1, 2, 3, 4], "no injected cell"
    assert code[3]["outputs"][0]["text"] == [f"{KERNEL_ENVIRONMENT['MALLOC_MMAP_THRESHOLD_']}\n"]
    assert not {"papermill", "widgets"} & set(notebook["metadata"])
    assert "version" not in notebook["metadata"]["language_info"]
    assert all(set(cell["metadata"]) <= {"tags"} for cell in notebook["cells"])
    assert str(project) not in text
    first = snapshot(smoke)
    started = time.monotonic()
    status, err = finished(make("smoke"))
    assert (status, err.strip()) == (0, "nothing to run: no notebook's code, the library, "
                                     "the lock file or the data changed")  # fmt: skip
    assert time.monotonic() - started < 30
    # a heading is no code; a new cell is
    source = nbformat.read(notebooks / "01_first.ipynb", as_version=4)
    source.cells[0].source = "## A new title"
    nbformat.write(source, notebooks / "01_first.ipynb")
    source = nbformat.read(notebooks / "02_second.ipynb", as_version=4)
    source.cells = [cell for cell in source.cells if "started" not in cell.source]
    source.cells.append(new_code_cell("print('added')"))
    nbformat.write(source, notebooks / "02_second.ipynb")
    status, err = finished(make(str(smoke / "notebooks" / "02_second.ipynb")))
    assert status == 0 and "ran 1 notebook(s)" in err and "01_first" not in err, err
    assert "added" in (smoke / "notebooks" / "02_second.ipynb").read_text()
    source = nbformat.read(notebooks / "01_first.ipynb", as_version=4)
    source.cells[0].source = "## The section"
    nbformat.write(source, notebooks / "01_first.ipynb")
    status, err = finished(make("smoke", "RERUN=1", "NOTEBOOKS=01_first.ipynb", "JOBS=1"))
    assert status == 0 and "ran 1 notebook(s)" in err, err
    again = snapshot(smoke)
    assert {k: v for k, v in again.items() if "01_first" in k} == {
        k: v for k, v in first.items() if "01_first" in k
    }, "the same bytes again"


@pytest.mark.full_data
def test_make_figures_fetches_the_data_then_writes_each_notebook_over_itself(
    project: Path, make: Make
) -> None:
    figures = project / "readme_images"
    status, err = finished(make("figures", f"FIGURE_DIR={figures}", data=True))
    assert status == 0 and "ran 2 notebook(s)" in err, err
    assert (figures / "02_second.png").read_bytes() == b"png 02_second"
    notebook = nbformat.read(project / "notebooks" / "02_second.ipynb", as_version=4)
    assert [cell.execution_count for cell in notebook.cells[1:]] == [1, 2]
    assert finished(make("figures", f"FIGURE_DIR={figures}", data=True))[1].endswith(
        "nothing to run: no notebook's code, the library, the lock file or the data changed\n"
    )


def test_stream_chunks_are_merged_into_one_output(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[new_code_cell("print('a table')")])
    notebook.cells[0].outputs = [
        new_output("stream", name="stdout", text="a table\nlast row"),
        new_output("stream", name="stdout", text="\n"),
        new_output("stream", name="stderr", text="a warning\n"),
        new_output("stream", name="stdout", text="after\n"),
    ]
    normalise_notebook(notebook, tmp_path / "chunks.ipynb")
    outputs = nbformat.read(tmp_path / "chunks.ipynb", as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [
        ("stdout", "a table\nlast row\n"),
        ("stderr", "a warning\n"),
        ("stdout", "after\n"),
    ]


def test_a_failing_cell_is_named_and_the_notebook_beside_it_is_still_placed(
    project: Path, make: Make
) -> None:
    marker = project / "child.pid"
    wait = f"import time\nfrom pathlib import Path\nwhile not Path(r'{marker}').exists():\n"
    write_notebook(project / "notebooks" / "01_first.ipynb", waiting_cell(marker, "True"), "1 / 0")
    write_notebook(project / "notebooks" / "02_second.ipynb", wait + "    time.sleep(0.05)")
    status, err = finished(make("smoke"))
    assert status != 0
    assert "01_first.ipynb failed in cell [3] (`1 / 0`): ZeroDivisionError: division by zero" in err
    kept = project / "build" / "runs" / "smoke" / "01_first" / "01_first.ipynb"
    assert f"Nothing of it was placed; what ran is kept in {kept}." in err
    assert "1 / 0" in kept.read_text()
    placed = project / "build" / "smoke" / "notebooks"
    assert [path.name for path in placed.iterdir()] == ["02_second.ipynb"]
    wait_until_gone({int(marker.read_text())}, seconds=10)


@pytest.mark.parametrize(
    ("source", "failure"),
    [(None, "NotJSONError"), ("import os\nos._exit(1)", "DeadKernelError")],
    ids=["unreadable", "kernel-dies"],
)
def test_a_failure_outside_the_cells_is_not_called_a_cells(
    project: Path, make: Make, source: str | None, failure: str
) -> None:
    path = project / "notebooks" / "02_second.ipynb"
    path.write_text("{ not a notebook") if source is None else write_notebook(path, source)
    status, err = finished(make("smoke", "NOTEBOOKS=02_second.ipynb"))
    assert status != 0
    assert f"02_second.ipynb failed outside its cells: {failure}" in err
    assert "not a cell's failure" in err and "Fix the cell" not in err


@pytest.mark.parametrize("case", ["build-is-a-file", "smoke-is-a-symlink", "another-file-system"])
def test_a_folder_it_cannot_write_is_said_before_any_work(
    project: Path, make: Make, case: str
) -> None:
    build = project / "build"
    arguments = ["smoke"]
    if case == "build-is-a-file":
        build.write_text("")
        said = f"{build} is a file, not a folder"
    elif case == "smoke-is-a-symlink":
        build.mkdir()
        (build / "smoke").symlink_to(project)
        said = f"{build}/smoke is a symbolic link"
    else:  # /dev/shm is a tmpfs of its own
        figures = Path("/dev/shm") / f"figures-{os.getpid()}"
        arguments = ["figures", f"FIGURE_DIR={figures}"]
        said = f"/dev/shm is on another file system than {build}/"
    started = time.monotonic()
    status, err = finished(make(*arguments))
    assert status != 0 and time.monotonic() - started < 20
    assert f"error: {said}" in err and "Nothing was run." in err


def test_one_run_at_a_time_no_clean_and_no_install_during_it(project: Path, make: Make) -> None:
    """The lock is held all the run long: a second run, a clean, an install are refused."""
    release = project / "release"
    markers = [project / f"{name}.started" for name in ("01_first", "02_second")]
    for marker in markers:
        write_notebook(
            project / "notebooks" / f"{marker.stem}.ipynb",
            FIGURE.format(marker.stem),
            waiting_cell(marker, until=f"Path(r'{release}').exists()"),
        )
    (project / "cache" / "joblib").mkdir(parents=True)
    first = make("smoke")
    wait_for(markers, first)
    before = snapshot(project / "build", project / "cache")
    for attempt in (
        ["smoke"],
        ["clean"],
        ["-W", "src/mnist_study/__init__.py", ".venv/.installed"],
    ):
        status, err = finished(make(*attempt))
        assert status != 0 and "run.lock is held" in err, attempt
    assert snapshot(project / "build", project / "cache") == before
    release.touch()
    status, err = finished(first)
    assert status == 0, err
    assert finished(make("clean"))[0] == 0
    assert not (project / "cache").exists(), "MNIST_STUDY_CACHE_DIR's cache is emptied"
    assert [path.name for path in (project / "build").iterdir()] == ["run.lock"]


def kernel_with_workers(folder: Path) -> str:
    """A cell: joblib's workers memory-map an array in /dev/shm; a child in a session of its own."""
    return (
        "import os, subprocess, sys, threading, time\nimport numpy as np\n"
        "from pathlib import Path\nfrom joblib import Parallel, delayed\n"
        "work = lambda: Parallel(n_jobs=2, max_nbytes=1)(delayed(time.sleep)(300 + a[0]) "
        "for a in [np.zeros(1000)] * 2)\nthreading.Thread(target=work, daemon=True).start()\n"
        "while not list(Path('/dev/shm').glob(f'joblib_memmapping_folder_{os.getpid()}_*')):\n"
        "    time.sleep(0.1)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
        "start_new_session=True)\n"
        f"Path(r'{folder / 'kernel'}').write_text(str(os.getpid()))"
    )


def running_pair(project: Path, make: Make) -> tuple[subprocess.Popen[str], set[int], str]:
    """Both notebooks running, the first with workers: make, the run's processes, the kernel."""
    markers = [project / f"{name}.running" for name in ("01_first", "02_second")]
    for marker in markers:
        release = f"Path(r'{project / 'release'}').exists()"
        cells = [FIGURE.format(marker.stem), waiting_cell(marker, until=release)]
        if marker == markers[0]:
            cells.insert(1, kernel_with_workers(project))
        write_notebook(project / "notebooks" / f"{marker.stem}.ipynb", *cells)
    process = make("smoke", start_new_session=True)
    wait_for([*markers, project / "kernel"], process)
    time.sleep(0.5)  # the child in its own session has started
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    assert {int(marker.read_text()) for marker in markers} <= family
    kernel = (project / "kernel").read_text()
    assert list(Path("/dev/shm").glob(f"*{kernel}*")), "joblib's files are there"
    return process, family, kernel


def assert_all_ended(project: Path, family: set[int], kernel: str) -> None:
    wait_until_gone(family, seconds=30)
    assert list(Path("/dev/shm").glob(f"*{kernel}*")) == []
    assert [p.pid for p in psutil.process_iter() if str(project) in cwd(p)] == [], "none left"


def cwd(process: psutil.Process) -> str:
    """A process's working folder (a child in a session of its own keeps the kernel's)."""
    try:
        return process.cwd()
    except psutil.Error:
        return ""


@pytest.mark.parametrize(
    ("signum", "group"),
    [
        (signal.SIGINT, True),
        (signal.SIGINT, False),
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
    ],
    ids=["ctrl-c", "int-to-make-alone", "term-to-make", "hup-to-make-alone"],
)
def test_a_signal_stops_every_process_and_places_nothing(
    project: Path, make: Make, signum: signal.Signals, group: bool
) -> None:
    process, family, kernel = running_pair(project, make)
    started = time.monotonic()
    os.killpg(process.pid, signum) if group else process.send_signal(signum)
    status, err = finished(process, seconds=60)
    assert status != 0, err
    assert time.monotonic() - started < 30, "within seconds, on a busy machine too"
    assert f"interrupted ({signum.name}): none had finished; no notebook was half-placed." in err
    assert "Traceback" not in err
    assert_all_ended(project, family, kernel)
    assert not list((project / "build" / "smoke").rglob("*.*")), "nothing placed"
    assert not (project / "build" / "runs" / "smoke" / "01_first").exists(), "no scratch left"


@pytest.mark.parametrize("killed", ["make", "the lock holder", "a notebook's process"])
def test_sigkill_to_any_of_its_processes_ends_every_process_of_the_run(
    project: Path, make: Make, killed: str
) -> None:
    process, family, kernel = running_pair(project, make)
    (holder,) = psutil.Process(process.pid).children()
    victim = {
        "make": psutil.Process(process.pid),
        "the lock holder": holder,
        "a notebook's process": next(
            p for p in holder.children(recursive=True) if "tools.execute" in " ".join(p.cmdline())
        ),
    }[killed]
    victim.kill()
    (project / "release").touch()  # the other notebook may end: make lets it finish
    _, err = finished(process, seconds=60)
    assert_all_ended(project, family, kernel)
    if killed == "make":  # named as what it is, not as a hang-up
        assert f"interrupted (the make that started it (PID {process.pid}) has ended)" in err


def test_a_hang_up_that_nohup_ignores_stays_ignored(project: Path, make: Make) -> None:
    """`nohup make smoke &`, then the terminal closes: a SIGHUP to the group changes nothing."""
    marker, release = project / "started", project / "release"
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        waiting_cell(marker, until=f"Path(r'{release}').exists()"),
    )

    def as_nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    process = make("smoke", preexec_fn=as_nohup, start_new_session=True)
    wait_for([marker], process)
    os.killpg(process.pid, signal.SIGHUP)
    time.sleep(1)
    release.touch()
    status, err = finished(process)
    assert status == 0, err
    assert "interrupted" not in err and "ran 2 notebook(s)" in err


def test_an_environment_whose_creation_was_interrupted_is_created_again(tmp_path: Path) -> None:
    """A .venv without pip (Ctrl-C inside ensurepip): the next make creates it again."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    command = [
        "make",
        f"VENV={venv}",
        f"PYTHON={sys.executable}",
        "PIP=true",
        f"{venv}/.installed-deps",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"]).returncode == 0


@pytest.mark.smoke
def test_smoke_run_of_the_study_notebooks() -> None:
    """Every notebook runs on the fixture through make and writes into build/smoke only."""
    before = snapshot(NOTEBOOK_DIR, README_FIGURE_DIR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_STUDY_")}
    result = subprocess.run(
        ["make", "--no-print-directory", "smoke", "RERUN=1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert snapshot(NOTEBOOK_DIR, README_FIGURE_DIR) == before
    smoke = ROOT / "build" / "smoke"
    executed = sorted(p.name for p in (smoke / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    for path in (smoke / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{path.name}: unexecuted cell"
                assert all(o.output_type != "error" for o in cell.outputs), path.name
    sources = " ".join(path.read_text() for path in NOTEBOOK_DIR.glob("*.ipynb"))
    drawn = {p.name for p in README_FIGURE_DIR.glob("*.png") if f'{p.name}\\"' in sources}
    assert drawn and drawn <= {p.name for p in (smoke / "readme_images").glob("*.png")}
