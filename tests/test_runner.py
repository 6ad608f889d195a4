"""The notebook runner: normalised output, all-or-nothing updates, clear failures, clean stops."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tools import run_notebooks as runner
from tools.normalise import normalise_notebook
from tools.placing import PlacingError, move_into_place, run_folder
from tools.stop_signals import Stopped


def write_notebook(path: Path, sources: list[str]) -> None:
    notebook = new_notebook()
    notebook.cells = [new_code_cell(source) for source in sources]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A miniature project: two notebooks that write one figure each, and committed outputs."""
    for name in ("notebooks", "readme_images"):
        (tmp_path / name).mkdir()
    figure = (
        "from pathlib import Path\n"
        "Path(figure_dir, '{name}.png').write_bytes(b'png {name}')\n"
        "print('{name} done')"
    )
    for name in ("01_first", "02_second"):
        write_notebook(
            tmp_path / "notebooks" / f"{name}.ipynb",
            ['figure_dir = "../readme_images"', figure.format(name=name)],
        )
    (tmp_path / "readme_images" / "01_first.png").write_bytes(b"committed figure")
    return tmp_path


def test_main_job_writes_normalised_notebooks_and_figures(project: Path) -> None:
    assert runner.main(["--root", str(project)]) == 0
    assert (project / "readme_images" / "01_first.png").read_bytes() == b"png 01_first"
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"png 02_second"
    notebook = json.loads((project / "notebooks" / "01_first.ipynb").read_text())
    assert [cell["execution_count"] for cell in notebook["cells"]] == [1, 2]
    assert not any(
        "injected-parameters" in cell["metadata"].get("tags", []) for cell in notebook["cells"]
    )
    assert "papermill" not in notebook["metadata"]
    assert "version" not in notebook["metadata"].get("language_info", {})
    assert all("execution" not in cell["metadata"] for cell in notebook["cells"])
    assert all("papermill" not in cell["metadata"] for cell in notebook["cells"])
    assert notebook["cells"][1]["outputs"][0]["text"] == ["01_first done\n"]
    assert str(project) not in (project / "notebooks" / "01_first.ipynb").read_text()


def test_notebooks_start_longest_first_by_their_last_times(tmp_path: Path) -> None:
    names = ["01_a", "02_b", "03_c", "04_d"]
    paths = [tmp_path / f"{name}.ipynb" for name in names]
    times = tmp_path / "notebook-seconds.json"
    assert runner.longest_first(paths, times) == paths  # no times yet: numbered order
    times.write_text("not json")
    assert runner.longest_first(paths, times) == paths
    times.write_text(json.dumps({"01_a": 4.0, "02_b": 15.5, "04_d": 8.0}))
    # 03_c was never timed (a new notebook may be long): it starts first
    assert [p.stem for p in runner.longest_first(paths, times)] == ["03_c", "02_b", "04_d", "01_a"]


def test_a_successful_run_records_each_notebooks_longest_time(project: Path) -> None:
    times = project / "build" / "notebook-seconds.json"
    times.parent.mkdir()
    times.write_text(json.dumps({"00_removed": 3.0, "01_first": 0.001}))
    assert runner.main(["--root", str(project), "01_first"]) == 0
    recorded = json.loads(times.read_text())
    assert set(recorded) == {"00_removed", "01_first"}
    assert 0.001 < recorded["01_first"] < 999.0
    # a quicker run (the cache filled) keeps the longest time: the order an empty cache needs
    times.write_text(json.dumps({"01_first": 999.0}))
    assert runner.main(["--root", str(project), "01_first"]) == 0
    assert json.loads(times.read_text()) == {"01_first": 999.0}
    assert not list(times.parent.glob("*.partial"))


def test_stream_chunks_are_merged_into_one_output(tmp_path: Path) -> None:
    notebook = new_notebook()
    notebook.cells = [new_code_cell("print('a table')")]
    notebook.cells[0].outputs = [
        new_output("stream", name="stdout", text="a table\nlast row"),
        new_output("stream", name="stdout", text="\n"),
        new_output("stream", name="stderr", text="a warning\n"),
        new_output("display_data", data={"text/plain": "a figure"}),
        new_output("stream", name="stdout", text="after\n"),
    ]
    path = tmp_path / "chunks.ipynb"
    nbformat.write(notebook, path)
    normalise_notebook(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.get("name", o.output_type) for o in outputs] == [
        "stdout",
        "stderr",
        "display_data",
        "stdout",
    ]
    assert outputs[0].text == "a table\nlast row\n"


def test_two_runs_are_byte_identical(project: Path) -> None:
    assert runner.main(["--root", str(project)]) == 0
    first = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project)]) == 0
    assert snapshot(project / "notebooks", project / "readme_images") == first


def test_check_mode_names_differing_files_and_changes_nothing(project: Path) -> None:
    assert runner.main(["--root", str(project)]) == 0
    assert runner.main(["--root", str(project), "--check"]) == 0
    (project / "readme_images" / "02_second.png").write_bytes(b"edited by hand")
    before = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project), "--check"]) == 1
    assert snapshot(project / "notebooks", project / "readme_images") == before


def test_check_mode_reports_the_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--root", str(project)]) == 0
    path = project / "notebooks" / "01_first.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][1]["outputs"][0]["text"] = ["01_first DONE\n"]
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    assert runner.main(["--root", str(project), "--check"]) == 1
    assert "notebooks/01_first.ipynb" in capsys.readouterr().err


def test_failing_cell_stops_the_run_and_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        ['figure_dir = "."', "x = 1", "raise ValueError('broken on purpose')"],
    )
    before = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert (
        "02_second.ipynb failed in cell [3] (`raise ValueError('broken on purpose')`): "
        "ValueError: broken on purpose"
    ) in err
    assert "Nothing under notebooks/ or readme_images/ was changed" in err
    assert "Fix the cell and re-run" in err
    assert snapshot(project / "notebooks", project / "readme_images") == before


def wait_for_file_cell(mine: str, other: str) -> str:
    """A cell that marks this notebook as started and waits up to 60 s for the other one."""
    return (
        "import time\n"
        "from pathlib import Path\n"
        f"Path('{mine}.started').touch()\n"
        "deadline = time.monotonic() + 60\n"
        f"while not Path('{other}.started').exists():\n"
        "    assert time.monotonic() < deadline, 'the other notebook never ran alongside'\n"
        "    time.sleep(0.05)"
    )


def test_two_notebooks_run_side_by_side(project: Path) -> None:
    """Each notebook waits for the other to have started: this passes only if they overlap."""
    for mine, other in (("01_first", "02_second"), ("02_second", "01_first")):
        write_notebook(
            project / "notebooks" / f"{mine}.ipynb",
            ['figure_dir = "."', wait_for_file_cell(mine, other)],
        )
    assert runner.main(["--root", str(project), "--jobs", "2"]) == 0
    notebook = json.loads((project / "notebooks" / "02_second.ipynb").read_text())
    assert notebook["cells"][1]["outputs"] == []


def test_a_failure_stops_the_notebook_running_alongside(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """02 fails while 01 is still running: 01's kernel is shut down, not left behind."""
    write_notebook(
        project / "notebooks" / "01_first.ipynb",
        [
            'figure_dir = "."',
            "import os, time\nfrom pathlib import Path\n"
            "Path('kernel.pid').write_text(str(os.getpid()))\ntime.sleep(300)",
        ],
    )
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        [
            'figure_dir = "."',
            "import time\nfrom pathlib import Path\n"
            "while not Path('kernel.pid').exists():\n    time.sleep(0.05)",
            "1 / 0",
        ],
    )
    before = snapshot(project / "readme_images")
    assert runner.main(["--root", str(project), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "02_second.ipynb failed in cell [3] (`1 / 0`): ZeroDivisionError" in err
    kernel = int((project / "notebooks" / "kernel.pid").read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(kernel) and psutil.Process(kernel).status() != "zombie":
        assert time.monotonic() < deadline, "the other notebook's kernel was left running"
        time.sleep(0.2)
    assert snapshot(project / "readme_images") == before


def test_no_process_a_notebook_started_outlives_it(project: Path) -> None:
    """A kernel's own processes end with it, even after a success and outside its tree.

    ipykernel ends its children when it shuts down, and jupyter_client interrupts its process
    group; a grandchild whose parent has exited (a daemon, say) is no longer among the former
    and, ignoring SIGINT and SIGTERM as joblib's resource tracker does, survives the latter.
    """
    marker = project / "grandchild.pid"
    cell = (
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "inner = (\n"
        "    'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); '\n"
        "    'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'\n"
        ")\n"
        "outer = (\n"
        "    'import subprocess, sys; print(subprocess.Popen([sys.executable, \"-c\", '\n"
        "    + repr(inner) + '], stdout=subprocess.DEVNULL).pid)'\n"
        ")\n"
        "parent = subprocess.Popen(\n"
        "    [sys.executable, '-c', outer], stdout=subprocess.PIPE, text=True\n"
        ")\n"
        f"Path(r'{marker}').write_text(parent.stdout.readline())\n"
        "parent.wait()"
    )
    write_notebook(project / "notebooks" / "01_first.ipynb", ['figure_dir = "."', cell])
    assert runner.main(["--root", str(project), "01_first"]) == 0
    wait_until_gone({int(marker.read_text())})


def test_jobs_must_be_a_positive_number(project: Path) -> None:
    with pytest.raises(SystemExit):
        runner.main(["--root", str(project), "--jobs", "0"])


def test_an_unreadable_notebook_is_named_and_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "notebooks" / "02_second.ipynb").write_text("{ not a notebook")
    before = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "02_second.ipynb failed outside its cells" in err
    assert "Fix the cell" not in err, "the failure is not a cell's"
    assert "not a cell's" in err
    assert snapshot(project / "notebooks", project / "readme_images") == before


def test_a_kernel_that_dies_is_not_called_a_failing_cell(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        project / "notebooks" / "02_second.ipynb", ['figure_dir = "."', "import os\nos._exit(1)"]
    )
    before = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "02_second.ipynb failed outside its cells: DeadKernelError" in err
    assert "Fix the cell" not in err
    assert snapshot(project / "notebooks", project / "readme_images") == before


def test_unknown_notebook_name_is_an_error(project: Path) -> None:
    with pytest.raises(SystemExit, match="no such notebook: 07_missing"):
        runner.main(["--root", str(project), "07_missing"])


@pytest.mark.smoke
def test_smoke_run_of_the_study_notebooks(tmp_path: Path) -> None:
    """Every notebook runs on the fixture, writes its figures to the scratch folder only."""
    committed = snapshot(ROOT / "notebooks", ROOT / "readme_images")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_STUDY_")}
    result = subprocess.run(
        [sys.executable, "-m", "tools.run_notebooks", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert snapshot(ROOT / "notebooks", ROOT / "readme_images") == committed
    smoke = ROOT / "build" / "smoke"
    executed = sorted(p.name for p in (smoke / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in (smoke / "notebooks").glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{path.name}: unexecuted cell"
                assert all(o.output_type != "error" for o in cell.outputs), path.name
    committed_figures = {p.name for p in (ROOT / "readme_images").glob("*.png")}
    produced = {p.name for p in (smoke / "readme_images").glob("*.png")}
    taken_in_the_browser = {"jupyter_notebook_location.png", "draw_a_digit.png"}  # make screenshot
    assert committed_figures - taken_in_the_browser <= produced


def test_a_second_run_in_the_same_checkout_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "build").mkdir()
    before = snapshot(project / "notebooks", project / "readme_images")
    with open(project / "build" / "run.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert runner.main(["--root", str(project)]) == 1
    assert "already being run" in capsys.readouterr().err
    assert snapshot(project / "notebooks", project / "readme_images") == before
    assert runner.main(["--root", str(project)]) == 0, "the lock is free once its holder ends"


def start_runner(root: Path, *args: str) -> subprocess.Popen[str]:
    """The runner on ``root`` as a separate process, its stderr captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "tools.run_notebooks", "--root", str(root), *args],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_until_running(process: subprocess.Popen[str], markers: list[Path]) -> None:
    """Wait until every marker file exists (written by a running cell)."""
    deadline = time.monotonic() + 120
    while not all(marker.exists() for marker in markers):
        assert time.monotonic() < deadline, "the notebooks never started"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.1)


def running_cell(marker: Path, until: str = "False") -> str:
    """A cell that starts a child process of the kernel, writes ``marker``, waits for ``until``."""
    return (
        "import subprocess, sys, time\n"
        "from pathlib import Path\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"Path(r'{marker}').write_text(str(child.pid))\n"
        "deadline = time.monotonic() + 300\n"
        f"while not ({until}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)"
    )


def gone(pids: set[int]) -> bool:
    """Whether none of the processes is still running (a zombie has ended)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def wait_until_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 30
    while not gone(pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_a_signal_stops_every_process_and_changes_nothing(
    project: Path, signum: signal.Signals, status: int
) -> None:
    """Two notebooks running, each kernel with a child, three waiting (the pool's queue full):
    the signal ends them all, in one line."""
    markers = [project / f"{name}.running" for name in ("01_first", "02_second")]
    for name, marker in zip(("01_first", "02_second"), markers, strict=True):
        write_notebook(
            project / "notebooks" / f"{name}.ipynb",
            [
                'figure_dir = "."',
                f"from pathlib import Path\nPath(figure_dir, '{name}.png').write_bytes(b'new')",
                running_cell(marker),
            ],
        )
    for name in ("03_third", "04_fourth", "05_fifth"):
        write_notebook(project / "notebooks" / f"{name}.ipynb", ['figure_dir = "."'])
    before = snapshot(project / "notebooks", project / "readme_images")
    process = start_runner(project, "--jobs", "2")
    wait_until_running(process, markers)
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    kernel_children = {int(marker.read_text()) for marker in markers}
    assert kernel_children <= family
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert "Kernel died" not in err
    said = [line for line in err.splitlines() if "interrupted" in line or "error" in line]
    assert said == [
        f"interrupted ({signum.name}): nothing under notebooks/ or readme_images/ was changed."
    ]
    wait_until_gone(family)
    assert snapshot(project / "notebooks", project / "readme_images") == before
    assert list((project / "build" / "runs").iterdir()) == [], "the staging folder was left"


def test_a_second_run_is_refused_while_one_runs_and_the_first_completes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock is held for the whole run: a second is refused and touches none of its files."""
    marker, release = project / "started", project / "release"
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        [
            'figure_dir = "."',
            "from pathlib import Path\nPath(figure_dir, '02_second.png').write_bytes(b'first')",
            running_cell(marker, until=f"Path(r'{release}').exists()"),
        ],
    )
    first = start_runner(project, "--jobs", "1")
    wait_until_running(first, [marker])
    staged = snapshot(project / "build" / "runs")
    committed = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project)]) == 1
    assert "already being run" in capsys.readouterr().err
    assert snapshot(project / "build" / "runs") == staged
    assert snapshot(project / "notebooks", project / "readme_images") == committed
    release.touch()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"first"
    assert (project / "readme_images" / "01_first.png").read_bytes() == b"png 01_first"
    assert list((project / "build" / "runs").iterdir()) == []


def test_each_run_stages_in_a_folder_no_other_run_touches(tmp_path: Path) -> None:
    """Two runs' folders differ; a new run removes an ended run's folder, never a running one's."""
    build = tmp_path / "build"
    with run_folder(build) as ended:
        (ended / "left.ipynb").write_text("from a run that ended")
    with run_folder(build) as first:
        (first / "staged.ipynb").write_text("first")
        with run_folder(build) as second:
            assert second != first
            assert (first / "staged.ipynb").read_text() == "first"
            assert not ended.exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_killed_runner_takes_its_workers_and_kernels_with_it(project: Path) -> None:
    """SIGKILL gives the runner no chance to stop anything: its workers must end on their own.

    The next run then starts from a clean slate and puts only its own files in place.
    """
    marker = project / "started"
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        [
            'figure_dir = "."',
            "from pathlib import Path\nPath(figure_dir, '02_second.png').write_bytes(b'killed')",
            running_cell(marker),
        ],
    )
    process = start_runner(project, "--jobs", "2")
    wait_until_running(process, [marker])
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    assert int(marker.read_text()) in family
    process.kill()
    process.communicate(timeout=60)
    wait_until_gone(family)
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        [
            'figure_dir = "."',
            "from pathlib import Path\nPath(figure_dir, '02_second.png').write_bytes(b'second')",
        ],
    )
    assert runner.main(["--root", str(project)]) == 0
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"second"
    assert list((project / "build" / "runs").iterdir()) == [], "the killed run's folder was left"


def test_a_target_that_cannot_be_written_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder where a figure goes (works as root, unlike permissions): nothing is moved."""
    (project / "readme_images" / "02_second.png").mkdir()
    before = snapshot(project / "notebooks", project / "readme_images")
    assert runner.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "readme_images/02_second.png is a folder" in err
    assert "Nothing under notebooks/ or readme_images/ was changed." in err
    assert "Traceback" not in err
    assert snapshot(project / "notebooks", project / "readme_images") == before


DISK_FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def failing_moves(
    monkeypatch: pytest.MonkeyPatch,
    failing: set[int],
    error: BaseException = DISK_FULL,
) -> None:
    """Make the calls to ``os.replace`` numbered in ``failing`` raise ``error`` (a full disk)."""
    replace, moves = os.replace, []

    def move(source: Path, target: Path) -> None:
        moves.append(target)
        if len(moves) in failing:
            raise error
        replace(source, target)

    monkeypatch.setattr(os, "replace", move)


def test_a_failed_move_is_rolled_back(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last of four moves fails (a full disk): the three before it are undone."""

    before = snapshot(project / "notebooks", project / "readme_images")
    failing_moves(monkeypatch, {4})
    assert runner.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert f"could not write readme_images/02_second.png: {os.strerror(errno.ENOSPC)}" in err
    assert "Nothing under notebooks/ or readme_images/ was changed." in err
    assert snapshot(project / "notebooks", project / "readme_images") == before


def committed_and_staged(root: Path) -> list[tuple[Path, Path]]:
    """Two committed files and three staged ones (one of them new), as (staged, target) pairs."""
    for folder in ("notebooks", "readme_images", "stage"):
        (root / folder).mkdir()
    (root / "notebooks" / "a.ipynb").write_text("old a")
    (root / "readme_images" / "b.png").write_text("old b")
    pairs = []
    for name, folder in (
        ("a.ipynb", "notebooks"),
        ("b.png", "readme_images"),
        ("c.png", "readme_images"),
    ):
        (root / "stage" / name).write_text(f"new {name}")
        pairs.append((root / "stage" / name, root / folder / name))
    return pairs


def test_a_signal_during_the_move_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM arrives at the third move: the two before it are undone, the signal goes on."""
    pairs = committed_and_staged(tmp_path)
    before = snapshot(tmp_path / "notebooks", tmp_path / "readme_images")
    failing_moves(monkeypatch, {3}, Stopped(signal.SIGTERM))
    with pytest.raises(Stopped):
        move_into_place(pairs, tmp_path / "previous", tmp_path)
    assert snapshot(tmp_path / "notebooks", tmp_path / "readme_images") == before


def test_a_file_that_cannot_be_put_back_is_named_with_its_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third move fails, then putting the second's target back fails too: both are said."""
    pairs = committed_and_staged(tmp_path)
    failing_moves(monkeypatch, {3, 4})
    with pytest.raises(PlacingError) as raised:
        move_into_place(pairs, tmp_path / "previous", tmp_path)
    assert not raised.value.restored
    assert "could not write readme_images/c.png" in str(raised.value)
    assert "could not put back b.png" in str(raised.value)
    assert (tmp_path / "notebooks" / "a.ipynb").read_text() == "old a"
    assert (tmp_path / "previous" / "1").read_text() == "old b"


def test_a_killed_worker_leaves_none_of_its_kernel_processes(project: Path) -> None:
    """A worker killed outright (out of memory, say): its kernel's processes are found and ended."""
    marker = project / "started"
    write_notebook(
        project / "notebooks" / "02_second.ipynb", ['figure_dir = "."', running_cell(marker)]
    )
    before = snapshot(project / "notebooks", project / "readme_images")
    process = start_runner(project, "02_second")
    wait_until_running(process, [marker])
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    kernel = psutil.Process(int(marker.read_text())).parent()
    kernel.parent().kill()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "02_second.ipynb did not finish: a worker process ended abruptly" in err
    assert "Fix the cell" not in err
    assert "Traceback" not in err
    wait_until_gone(family)
    assert snapshot(project / "notebooks", project / "readme_images") == before
