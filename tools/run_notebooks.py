"""A run of the notebooks under the checkout's lock, and the small jobs make's rules ask for.

``run BUILD NOTEBOOKS FIGURES MAKE…`` (the make that runs ``tools/execute.py`` per notebook),
``key NOTEBOOK KEYFILE MODE``, ``free BUILD`` (no run holds the lock), ``clean BUILD``.
"""

import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext, suppress
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from tools.paths import FIXTURE_FILE, ROOT

RUN_ENV = "MNIST_STUDY_RUN"  # set for every process of a run: the lock holder's PID
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTHING = "nothing to run: no notebook's code, the library, the lock file or the data changed"
LINUX = ctypes.CDLL(None).prctl if sys.platform == "linux" else lambda *_: 0  # one system call


def say(message: str) -> None:
    """One line on stderr in one write, so that two notebooks' lines never mix."""
    with suppress(OSError):
        os.write(2, f"{message}\n".encode())


def end_descendants(seconds: float = 5) -> None:
    """SIGTERM every descendant, SIGKILL those left after ``seconds``, sweep their /dev/shm."""
    # SIGTERM first: joblib's resource tracker ignores it, and cleans /dev/shm once the rest ended
    family = psutil.Process().children(recursive=True)
    pids = {process.pid for process in family}
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for process in family:
            with suppress(psutil.Error):
                process.send_signal(signum)
        family = psutil.wait_procs(family, timeout=seconds)[1]
    # Hand-written: loky and joblib name their files after the process that made them, and remove
    # them only while their resource tracker lives (on a busy machine, not always in time).
    for pid, shm in ((pid, Path("/dev/shm")) for pid in pids):
        for left in (*shm.glob(f"sem.loky-{pid}-*"), *shm.glob(f"joblib_memmapping_*_{pid}_*")):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(True)


def on_stop(handler: object) -> None:
    """``handler`` for INT, TERM, HUP (unless ignored) and the parent's death (PR_SET_PDEATHSIG)."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, handler)
    LINUX(1, signal.SIGTERM)


def watch_make() -> None:
    """Signal this process when its parent make handles a stop signal sent to it alone."""
    # Hand-written: make then waits for its recipes, telling them nothing; Linux shows the signal
    # being handled as blocked (SigBlk in /proc/PID/status). Seen twice, as make blocks for moments.
    status, seen = Path(f"/proc/{os.getppid()}/status"), None
    while not time.sleep(0.25):
        with suppress(OSError, AttributeError):
            blocked = int(re.search(r"SigBlk:\s*(\w+)", status.read_text()).group(1), 16)
            now = next((s for s in STOP_SIGNALS if blocked >> (s - 1) & 1), None)
            if now is not None and now == seen:
                return os.kill(os.getpid(), now)
            seen = now


def taken(build: Path) -> FileLock | None:
    """The checkout's run lock, taken; None, said in one line, if a run holds it."""
    lock = FileLock(build / "run.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        say(f"error: the notebooks are being run in this checkout ({build}/run.lock is held): "
            "nothing was done. Wait for that run to end, or stop it.")  # fmt: skip
        return None
    return lock


def run(build: Path, into: list[Path], command: list[str]) -> int:
    """Run make's ``command`` under the lock; the exit status (128 + a stop signal's number)."""
    build.mkdir(exist_ok=True)
    if not (lock := taken(build)):
        return 1
    with lock:
        LINUX(36, 1)  # PR_SET_CHILD_SUBREAPER: what the run's processes leave becomes this one's
        placed = lambda: {p.name: p.stat().st_mtime_ns for p in into[0].glob("*.ipynb")}  # noqa: E731
        before, started, got, parent = placed(), time.monotonic(), [], os.getppid()
        # In a session of its own, a stop signal reaches make, and the notebooks, only from here.
        environment = {**os.environ, RUN_ENV: str(os.getpid())}
        make = subprocess.Popen(  # and a TERM if this process dies (PR_SET_PDEATHSIG)
            command, env=environment, start_new_session=True, preexec_fn=lambda: LINUX(1, 15)
        )

        def forward(signum: int, _frame: object) -> None:
            if not got:  # make takes a second INT as the end of its waiting for its recipes
                os.killpg(make.pid, signum)
            got.append(signum)

        on_stop(forward)
        threading.Thread(target=watch_make, daemon=True).start()
        status = make.wait()
        end_descendants()
        ran = sorted(name for name, at in placed().items() if before.get(name) != at)
        names, why = ", ".join(ran), f"the make that started it (PID {parent}) has ended"
        if got:
            done = f"{names} had finished and are in place" if ran else "none had finished"
            why = signal.Signals(got[0]).name if os.getppid() == parent else why
            say(f"interrupted ({why}): {done}; no notebook was half-placed.")
            return 128 + got[0]
        if status == 0:
            took = f"ran {len(ran)} notebook(s) in {time.monotonic() - started:.0f} s: {names}"
            say(took if ran else NOTHING)
        return status


def key(notebook: Path, keyfile: Path, mode: str) -> int:
    """Write the digest of what ``notebook``'s outputs depend on, only if it changed (for make)."""
    digest = hashlib.sha256(mode.encode())
    try:
        cells = json.loads(notebook.read_bytes())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        digest.update(json.dumps(code).encode())
    except (ValueError, LookupError, TypeError):  # no notebook: running it will say so
        digest.update(notebook.read_bytes())
    from mnist_study.settings import data_dir  # here: `free` runs before the package is installed

    library = sorted(p for p in (ROOT / "src" / "mnist_study").rglob("*") if p.suffix != ".pyc")
    data = FIXTURE_FILE if mode == "smoke" else data_dir() / "mnist_784.npz"
    for path in (*library, ROOT / "requirements.lock", data):
        if path.is_file():
            digest.update(f"{path.name}:{path.stat().st_size}:".encode() + path.read_bytes())
    text = f"{digest.hexdigest()}\n"
    if not keyfile.is_file() or keyfile.read_text() != text:
        keyfile.parent.mkdir(parents=True, exist_ok=True)
        keyfile.with_suffix(".new").write_text(text)
        keyfile.with_suffix(".new").replace(keyfile)
    return 0


def clean(build: Path) -> int:
    """Empty the results cache and ``build`` but its lock."""
    from mnist_study.settings import cache_dir  # here: `free` runs before the package is installed

    shutil.rmtree(cache_dir() / "joblib", ignore_errors=True)  # all that the library writes
    with suppress(OSError):
        cache_dir().rmdir()
    for path in build.iterdir() if build.is_dir() else ():
        if path.name != "run.lock":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return 0


def main(job: str, *rest: str) -> int:
    """The command line: the job and its arguments, as the module's docstring says."""
    if job == "run":
        return run(Path(rest[0]), [Path(rest[1]), Path(rest[2])], list(rest[3:]))
    if job == "key":
        return key(Path(rest[0]), Path(rest[1]), rest[2])
    build = Path(rest[0])  # free and clean: refused while a run holds the lock (but by the run)
    unlocked = os.environ.get(RUN_ENV) or not build.is_dir()
    if not (lock := nullcontext() if unlocked else taken(build)):
        return 1
    with lock:
        return clean(build) if job == "clean" else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
