"""The notebook runner: normalised output, all or nothing, clear failures, clean stops, progress."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import run_notebooks as runner
from tools import screenshot
from tools.lab import running_lab
from tools.notebook_pool import normalise_notebook
from tools.paths import KERNEL_ENVIRONMENT, NOTEBOOK_DIR, README_FIGURE_DIR, ROOT

UNCHANGED = "Nothing under notebooks/ or readme_images/ was changed"


def write_notebook(path: Path, sources: list[str]) -> None:
    """A notebook of code cells, the first one its parameters cell, under a section heading."""
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("## The section"), *map(new_code_cell, sources)]
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A miniature project: two notebooks that write one figure each, and committed outputs."""
    for name in ("notebooks", "readme_images"):
        (tmp_path / name).mkdir()
    figure = "from pathlib import Path\nPath(figure_dir, '{0}.png').write_bytes(b'png {0}')\n"
    figure += "print('{0} done')"
    for name in ("01_first", "02_second"):
        write_notebook(
            tmp_path / "notebooks" / f"{name}.ipynb", ['figure_dir = "."', figure.format(name)]
        )
    (tmp_path / "readme_images" / "01_first.png").write_bytes(b"committed figure")
    return tmp_path


def committed(project: Path) -> dict[str, str]:
    return snapshot(project / "notebooks", project / "readme_images")


def start_runner(root: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """The runner on ``root`` as a separate process, its stderr captured."""
    command = [sys.executable, "-m", "tools.run_notebooks", "--root", str(root), *args]
    return subprocess.Popen(
        command, **{"stderr": subprocess.PIPE, "text": True, "cwd": ROOT, **popen}
    )


def running_cell(marker: Path, until: str = "False") -> str:
    """A cell that starts a child process, writes ``marker`` (its PID) and waits for ``until``."""
    return (
        "import subprocess, sys, time\nfrom pathlib import Path\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"Path(r'{marker}').write_text(str(child.pid))\n"
        f"while not ({until}):\n    time.sleep(0.1)"
    )


def wait_until_running(process: subprocess.Popen[str], markers: list[Path]) -> None:
    deadline = time.monotonic() + 120
    while not all(marker.exists() for marker in markers):
        assert time.monotonic() < deadline, "the notebooks never started"
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.1)


def wait_until_gone(pids: set[int], seconds: float = 30) -> None:
    """Wait until none of the processes runs (a zombie has ended)."""
    deadline = time.monotonic() + seconds
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.2)


def test_a_run_writes_normalised_notebooks_and_figures_the_same_twice(project: Path) -> None:
    times = project / "build" / "notebook-seconds.json"
    times.parent.mkdir()
    times.write_text(json.dumps({"00_removed": 3.0, "01_first": 999.0}))
    assert runner.main(["--root", str(project)]) == 0
    assert (project / "readme_images" / "01_first.png").read_bytes() == b"png 01_first"
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"png 02_second"
    text = (project / "notebooks" / "01_first.ipynb").read_text()
    notebook = json.loads(text)
    code = notebook["cells"][1:]
    assert [cell["execution_count"] for cell in code] == [1, 2], "no injected parameters cell"
    assert code[1]["outputs"][0]["text"] == ["01_first done\n"]
    assert not {"papermill", "widgets"} & set(notebook["metadata"])
    assert "version" not in notebook["metadata"]["language_info"]
    assert all(set(cell["metadata"]) <= {"tags"} for cell in notebook["cells"])
    assert str(project) not in text
    first = committed(project)
    assert runner.main(["--root", str(project)]) == 0
    assert committed(project) == first
    assert list((project / "build" / "runs").iterdir()) == []
    recorded = json.loads(times.read_text())
    assert recorded["00_removed"] == 3.0 and recorded["01_first"] == 999.0  # the longest kept
    assert 0 < recorded["02_second"] < 999


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


def test_kernels_start_with_the_memory_setting_of_tools_paths(project: Path) -> None:
    """glibc's malloc threshold reaches the kernel, where it keeps notebook 06 within 2 GB."""
    source = "import os\nprint(os.environ.get('MALLOC_MMAP_THRESHOLD_'))"
    write_notebook(project / "notebooks" / "01_first.ipynb", ['figure_dir = "."', source])
    assert runner.main(["--root", str(project), "01_first"]) == 0
    cell = nbformat.read(project / "notebooks" / "01_first.ipynb", as_version=4).cells[2]
    assert cell.outputs[0].text == f"{KERNEL_ENVIRONMENT['MALLOC_MMAP_THRESHOLD_']}\n"


def test_notebooks_start_longest_first_by_their_longest_times(project: Path) -> None:
    paths = [project / f"{name}.ipynb" for name in ("01_a", "02_b", "03_c", "04_d")]
    times = project / "build" / "notebook-seconds.json"
    assert runner.longest_first(paths, times) == paths  # nothing recorded: numbered order
    times.parent.mkdir()
    times.write_text(json.dumps({"01_a": 4.0, "02_b": 15.5, "04_d": 8.0}))
    # 03_c was never timed (a new notebook may be long): it starts first
    assert [p.stem for p in runner.longest_first(paths, times)] == ["03_c", "02_b", "04_d", "01_a"]
    times.write_text('{"01_a": null')  # cut short: as if nothing were recorded
    assert runner.longest_first(paths, times) == paths


@pytest.mark.parametrize(
    ("source", "failure"),
    [(None, "NotJSONError"), ("import os\nos._exit(1)", "DeadKernelError")],
    ids=["unreadable", "kernel-dies"],
)
def test_a_failure_outside_the_cells_is_not_called_a_cells(
    project: Path, capsys: pytest.CaptureFixture[str], source: str | None, failure: str
) -> None:
    path = project / "notebooks" / "02_second.ipynb"
    path.write_text("{ not a notebook") if source is None else write_notebook(
        path, ['figure_dir = "."', source]
    )
    before = committed(project)
    assert runner.main(["--root", str(project), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert f"02_second.ipynb failed outside its cells: {failure}" in err
    assert "not a cell's" in err and "Fix the cell" not in err
    assert committed(project) == before


def test_two_notebooks_run_side_by_side(project: Path) -> None:
    """Each notebook waits for the other to have started: this passes only if they overlap."""
    for mine, other in (("01_first", "02_second"), ("02_second", "01_first")):
        cell = f"from pathlib import Path\nPath('{mine}.started').touch()\n"
        cell += f"import time\nwhile not Path('{other}.started').exists():\n    time.sleep(0.05)"
        write_notebook(project / "notebooks" / f"{mine}.ipynb", ['figure_dir = "."', cell])
    assert runner.main(["--root", str(project), "--jobs", "2"]) == 0


def test_a_failing_cell_is_named_stops_the_other_notebook_and_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = project / "running"
    write_notebook(
        project / "notebooks" / "01_first.ipynb", ['figure_dir = "."', running_cell(marker)]
    )
    wait = f"import time\nfrom pathlib import Path\nwhile not Path(r'{marker}').exists():\n"
    wait += "    time.sleep(0.05)"
    write_notebook(project / "notebooks" / "02_second.ipynb", ['figure_dir = "."', wait, "1 / 0"])
    before = committed(project)
    assert runner.main(["--root", str(project), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert (
        "02_second.ipynb failed in cell [3] (`1 / 0`): ZeroDivisionError: division by zero" in err
    )
    assert (
        f"{UNCHANGED} (what ran is kept in build/runs/" in err and "Fix the cell and re-run" in err
    )
    assert committed(project) == before
    wait_until_gone({int(marker.read_text())}, seconds=10)


def test_no_process_a_notebook_started_outlives_it(project: Path) -> None:
    """A grandchild whose parent has exited, ignoring SIGTERM as loky's resource tracker does."""
    marker = project / "grandchild.pid"
    inner = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    outer = "import subprocess as s, sys; print(s.Popen([sys.executable, '-c', "
    # its streams not the cell's pipes: else subprocess.run would wait for it (300 s)
    outer += f"{inner!r}], stdout=s.DEVNULL, stderr=s.DEVNULL).pid)"
    cell = "import subprocess, sys\nfrom pathlib import Path\n"
    cell += (
        f"out = subprocess.run([sys.executable, '-c', {outer!r}], capture_output=True, text=True)"
    )
    cell += f"\nPath(r'{marker}').write_text(out.stdout)"
    write_notebook(project / "notebooks" / "01_first.ipynb", ['figure_dir = "."', cell])
    assert runner.main(["--root", str(project), "01_first"]) == 0
    wait_until_gone({int(marker.read_text())}, seconds=5)


def test_command_line_mistakes_are_refused(project: Path) -> None:
    with pytest.raises(SystemExit):
        runner.main(["--root", str(project), "--jobs", "0"])
    with pytest.raises(SystemExit, match="no such notebook: 07_missing"):
        runner.main(["--root", str(project), "07_missing"])


@pytest.mark.parametrize("case", ["build-is-a-file", "smoke-is-a-symlink", "figures-is-a-file"])
def test_a_folder_it_cannot_write_is_said_before_any_work(
    project: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    build, figures = project / "build", project / "readme_images"
    if case == "build-is-a-file":
        build.write_text("")
        said = "build is a file, not a folder"
    elif case == "smoke-is-a-symlink":
        build.mkdir()
        (build / "smoke").symlink_to(project)
        said = "build/smoke is a symbolic link"
    else:
        shutil.rmtree(figures)
        figures.write_text("")
        said = "readme_images is a file, not a folder"
    started = time.monotonic()
    assert runner.main(["--root", str(project), *(["--smoke"] if "smoke" in case else [])]) == 1
    assert time.monotonic() - started < 5, "no notebook was run"
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}") and err.endswith("Nothing was run.\n")
    assert err.count("\n") == 1, "one plain line"


@pytest.mark.parametrize(
    ("namespace", "said"),
    [
        ("--mount", "readme_images/ is not writable"),  # a read-only mount: root ignores modes
        ("--net", "is the loopback interface down? (`ip link set lo up`)"),  # lo starts down
    ],
)
def test_a_read_only_folder_or_a_loopback_down_is_said_before_any_work(
    project: Path, namespace: str, said: str
) -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a mount or network namespace")
    run = f"exec {sys.executable} -m tools.run_notebooks --root {project}"
    if namespace == "--mount":
        run = f"mount -t tmpfs -o ro tmpfs {project / 'readme_images'} && {run}"
    command = ["unshare", namespace, "sh", "-c", run]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert said in result.stderr and result.stderr.endswith("Nothing was run.\n")


def test_one_run_at_a_time_and_no_clean_during_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock is held all the run long: a second run and a clean are refused, touch nothing."""
    marker, release = project / "started", project / "release"
    cells = [
        'figure_dir = "."',
        "from pathlib import Path\nPath(figure_dir, '02_second.png').write_bytes(b'first')",
    ]
    cells.append(running_cell(marker, until=f"Path(r'{release}').exists()"))
    write_notebook(project / "notebooks" / "02_second.ipynb", cells)
    (project / ".cache").mkdir()
    first = start_runner(project, "--jobs", "1")
    wait_until_running(first, [marker])
    staged = snapshot(project / "build", project / ".cache")
    before = committed(project)
    assert runner.main(["--root", str(project)]) == 1
    assert runner.main(["--root", str(project), "--clean"]) == 1
    assert capsys.readouterr().err.count("build/run.lock is held") == 2
    assert snapshot(project / "build", project / ".cache") == staged
    assert committed(project) == before
    release.touch()
    assert first.wait(timeout=120) == 0, first.communicate()[1]
    assert (project / "readme_images" / "02_second.png").read_bytes() == b"first"
    assert runner.main(["--root", str(project), "--clean"]) == 0
    assert not (project / ".cache").exists()
    assert [p.name for p in (project / "build").iterdir()] == ["run.lock"]


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_a_signal_stops_every_process_and_changes_nothing(
    project: Path, signum: signal.Signals, status: int
) -> None:
    """Two notebooks running, each kernel with a child, one waiting: the signal ends them all;
    what the first one's joblib workers memory-map in /dev/shm is removed."""
    markers = [project / f"{name}.running" for name in ("01_first", "02_second")]
    shared = (
        "import os, threading, time\nimport numpy as np\nfrom joblib import Parallel, delayed\n"
        "work = lambda: Parallel(n_jobs=2, max_nbytes=1)(delayed(time.sleep)(300 + a[0]) "
        "for a in [np.zeros(1000)] * 2)\nthreading.Thread(target=work, daemon=True).start()\n"
        "while not list(Path('/dev/shm').glob(f'joblib_memmapping_folder_{os.getpid()}_*')):\n"
        f"    time.sleep(0.1)\nPath(r'{project / 'kernel'}').write_text(str(os.getpid()))"
    )
    for marker in markers:
        figure = (
            f"from pathlib import Path\nPath(figure_dir, '{marker.stem}.png').write_bytes(b'new')"
        )
        write_notebook(
            project / "notebooks" / f"{marker.stem}.ipynb",
            ['figure_dir = "."', figure, *[shared][: marker == markers[0]], running_cell(marker)],
        )
    write_notebook(project / "notebooks" / "03_third.ipynb", ['figure_dir = "."'])
    before = committed(project)
    process = start_runner(project, "--jobs", "2")
    wait_until_running(process, markers)
    family = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    assert {int(marker.read_text()) for marker in markers} <= family
    kernel = (project / "kernel").read_text()
    assert list(Path("/dev/shm").glob(f"*{kernel}*")), "joblib's files are there"
    started = time.monotonic()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert time.monotonic() - started < 15
    assert (
        err.strip().splitlines()[-1]
        == f"interrupted ({signum.name}): nothing under notebooks/ or readme_images/ was changed."
    )
    assert "Traceback" not in err
    wait_until_gone(family, seconds=5)
    assert committed(project) == before
    assert list((project / "build" / "runs").iterdir()) == [], "the staging folder was left"
    assert list(Path("/dev/shm").glob(f"*{kernel}*")) == []


def test_a_hang_up_that_nohup_ignores_stays_ignored(project: Path) -> None:
    """`nohup make smoke &`, then the terminal closes: a SIGHUP to the group changes nothing."""
    marker, release = project / "started", project / "release"
    write_notebook(
        project / "notebooks" / "02_second.ipynb",
        ['figure_dir = "."', running_cell(marker, until=f"Path(r'{release}').exists()")],
    )

    def as_nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    process = start_runner(project, preexec_fn=as_nohup, start_new_session=True)
    wait_until_running(process, [marker])
    os.killpg(process.pid, signal.SIGHUP)
    time.sleep(1)
    release.touch()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "interrupted" not in err


@pytest.mark.parametrize("killed", ["make", "the runner"])
def test_sigkill_to_make_or_the_runner_ends_every_process_it_started(
    project: Path, killed: str
) -> None:
    """make SIGKILLed: the runner hangs up and ends its kernels. The runner SIGKILLed: the
    kernel's guard sees its pipe close and ends the kernel's group, its child included."""
    marker = project / "started"
    write_notebook(
        project / "notebooks" / "02_second.ipynb", ['figure_dir = "."', running_cell(marker)]
    )
    (project / "Makefile").write_text(
        f"run:\n\t@{sys.executable} -m tools.run_notebooks --root {project} 02_second\n"
    )
    make = subprocess.Popen(
        ["make", "-s", "-f", str(project / "Makefile"), "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_running(make, [marker])
    family = {child.pid for child in psutil.Process(make.pid).children(recursive=True)}
    assert int(marker.read_text()) in family
    if killed == "make":
        make.kill()
    else:
        (runner_process,) = psutil.Process(make.pid).children()
        runner_process.kill()
    make.wait()
    wait_until_gone(family, seconds=20)
    assert killed != "make" or list((project / "build" / "runs").iterdir()) == []


def read_terminal(leader: int, until: float) -> str:
    """What was written to the terminal whose leader side is ``leader``, until ``until``."""
    screen = b""
    while time.monotonic() < until:
        if not select.select([leader], [], [], 0.2)[0]:
            continue
        try:
            screen += os.read(leader, 65536)
        except OSError:  # every writer has closed it
            break
    return screen.decode(errors="replace")


def test_progress_says_which_cell_runs_and_that_it_is_alive(project: Path) -> None:
    """On a terminal: the notebook, its cell's heading and first line, the seconds; no ETA."""
    marker, release = project / "started", project / "release"
    cell = (
        f"# Fitting the forest\nfrom pathlib import Path\nPath(r'{marker}').touch()\nimport time\n"
    )
    cell += f"while not Path(r'{release}').exists():\n    time.sleep(0.1)"
    write_notebook(project / "notebooks" / "02_second.ipynb", ['figure_dir = "."', cell])
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    process = start_runner(project, "02_second", stderr=follower)
    os.close(follower)
    try:
        wait_until_running(process, [marker])
        text = read_terminal(leader, time.monotonic() + 4)
    finally:
        release.touch()
        process.wait(timeout=120)
        text += read_terminal(leader, time.monotonic() + 10)
        os.close(leader)
    shown = [line for line in text.split("\r") if line.startswith("02_second: 1/2 cells done")]
    assert [line for line in shown if "The section › Fitting the forest" in line], text
    seconds = {line.split("in cell 2 for ")[1].split(" s")[0] for line in shown if "cell 2" in line}
    assert len(seconds) >= 2, "the seconds go on while the cell runs"
    assert "s/it" not in text and "<" not in text, "no estimate of the time left"
    assert "\r[1/1] 02_second.ipynb done in" in text, "the line done starts at the line's start"
    assert process.returncode == 0


def failing_moves(monkeypatch: pytest.MonkeyPatch, failing: set[int], error: BaseException) -> None:
    """Make the calls to ``os.replace`` numbered in ``failing`` raise ``error``."""
    replace, moves = os.replace, []

    def move(source: Path, target: Path) -> None:
        moves.append(target)
        if len(moves) in failing:
            raise error
        replace(source, target)

    monkeypatch.setattr(os, "replace", move)


def test_a_folder_where_a_figure_goes_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "readme_images" / "02_second.png").mkdir()
    before = committed(project)
    assert runner.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "could not write readme_images/02_second.png: Is a directory" in err
    assert f"{UNCHANGED}." in err and "Traceback" not in err
    assert committed(project) == before


@pytest.fixture
def staged_pairs(tmp_path: Path) -> Iterator[list[tuple[Path, Path]]]:
    """Two committed files and three staged ones (one of them new), as (staged, target) pairs;
    the stop signals' handlers as they were (moving files back ignores them)."""
    for folder in ("notebooks", "readme_images", "stage"):
        (tmp_path / folder).mkdir()
    (tmp_path / "notebooks" / "a.ipynb").write_text("old a")
    (tmp_path / "readme_images" / "b.png").write_text("old b")
    pairs = []
    for name, folder in (
        ("a.ipynb", "notebooks"),
        ("b.png", "readme_images"),
        ("c.png", "readme_images"),
    ):
        (tmp_path / "stage" / name).write_text(f"new {name}")
        pairs.append((tmp_path / "stage" / name, tmp_path / folder / name))
    handlers = {signum: signal.getsignal(signum) for signum in runner.STOP_SIGNALS}
    yield pairs
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_a_signal_during_the_move_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staged_pairs: list[tuple[Path, Path]]
) -> None:
    pairs = staged_pairs
    before = committed(tmp_path)
    failing_moves(monkeypatch, {3}, runner.Stopped(signal.SIGTERM))
    with pytest.raises(runner.Stopped):
        runner.move_into_place(pairs, tmp_path / "previous", tmp_path)
    assert committed(tmp_path) == before


def test_a_file_that_cannot_be_put_back_is_named_with_its_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staged_pairs: list[tuple[Path, Path]]
) -> None:
    """The third move fails, then putting the second's target back fails too: both are said."""
    pairs = staged_pairs
    failing_moves(monkeypatch, {3, 4}, OSError(28, "No space left on device"))
    with pytest.raises(runner.PlacingError) as raised:
        runner.move_into_place(pairs, tmp_path / "previous", tmp_path)
    assert not raised.value.restored
    assert "could not write readme_images/c.png" in str(raised.value)
    assert "could not put back b.png" in str(raised.value)
    assert (tmp_path / "previous" / "1").read_text() == "old b"


def test_lab_listens_on_loopback_only_and_asks_for_its_token(tmp_path: Path) -> None:
    with running_lab(tmp_path) as server:
        listening = psutil.Process(server.process.pid).net_connections("tcp")
        addresses = {c.laddr.ip for c in listening if c.status == psutil.CONN_LISTEN}
        assert addresses == {"127.0.0.1"}
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.base_url}api/contents", timeout=10)
        assert refused.value.code == 403
        assert server.api("GET", "contents")["type"] == "directory"
        assert f"token={server.token}" in server.lab_url("notebooks")


@pytest.mark.smoke
def test_smoke_run_of_the_study_notebooks() -> None:
    """Every notebook runs on the fixture and writes its figures into build/smoke only."""
    before = snapshot(NOTEBOOK_DIR, README_FIGURE_DIR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_STUDY_")}
    result = subprocess.run(
        [sys.executable, "-m", "tools.run_notebooks", "--smoke"],
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
    produced = {p.name for p in (smoke / "readme_images").glob("*.png")}
    taken_in_the_browser = {
        p.name for p in (screenshot.SCREENSHOT, screenshot.DRAWING, screenshot.EXPLORER)
    }
    assert {p.name for p in README_FIGURE_DIR.glob("*.png")} - taken_in_the_browser <= produced
