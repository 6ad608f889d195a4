"""A run of the notebooks under the checkout's lock, and the small jobs make's rules ask of it.

``run``: say before any work what would keep the run from writing, take ``build/run.lock`` (one
run per checkout), start the make that executes the notebooks (``tools/execute.py``), pass it the
stop signals, end whatever it left, and say what ran. ``key``: a notebook's input digest for make.
``free``: refuse to change ``.venv`` during a run. ``clean``: empty the results cache and build/.
"""

from __future__ import annotations

import argparse
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
from contextlib import suppress
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from mnist_study.settings import cache_dir, data_dir
from tools.paths import FIXTURE_FILE, ROOT

RUN_ENV = "MNIST_STUDY_RUN"  # set for every process of a run: the lock holder's PID
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
cause: list[str] = []  # why a run stops, when no signal of its own says it


def say(message: str) -> None:
    """One line on stderr in one write, so that two notebooks' lines never mix."""
    with suppress(OSError):
        os.write(2, f"{message}\n".encode())


def adopt_orphans() -> None:
    """Linux: what this process's children leave behind becomes its child, new sessions too."""
    if sys.platform == "linux":  # PR_SET_CHILD_SUBREAPER: one system call, in no library
        ctypes.CDLL(None).prctl(36, 1)


def end_descendants(seconds: float = 5) -> None:
    """SIGTERM every descendant, SIGKILL those left after ``seconds``, and sweep /dev/shm.

    SIGTERM first lets joblib's resource tracker (which ignores it) remove its workers' files.
    """
    family = psutil.Process().children(recursive=True)
    pids = {process.pid for process in family}
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for process in family:
            with suppress(psutil.Error):
                process.send_signal(signum)
        family = psutil.wait_procs(family, timeout=seconds)[1]
    # Hand-written: loky and joblib name their files after the process that made them, and remove
    # them only while their resource tracker lives.
    for pid in pids:
        shm = Path("/dev/shm")
        for left in (*shm.glob(f"sem.loky-{pid}-*"), *shm.glob(f"joblib_memmapping_*_{pid}_*")):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(True)


def blocked_signal(pid: int) -> int | None:
    """The stop signal that process ``pid`` is handling now (Linux shows it as blocked), if any."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        blocked = int(re.search(r"SigBlk:\s*(\w+)", status).group(1), 16)
    except (OSError, AttributeError):
        return None
    return next((s for s in STOP_SIGNALS if blocked >> (s - 1) & 1), None)


def watch_parent() -> None:
    """Signal this process when its parent (make) ends, or handles a stop signal sent to it alone.

    Hand-written: make waits for its recipes on an INT or HUP sent to make's PID alone, and tells
    them nothing. Seen twice, a quarter of a second apart: make blocks signals for moments.
    """
    parent = os.getppid()

    def watch() -> None:
        seen = None
        while time.sleep(0.25) or os.getppid() == parent:
            now = blocked_signal(parent)
            if now is not None and now == seen:
                return os.kill(os.getpid(), now)
            seen = now
        cause.append(f"the make that started it (PID {parent}) has ended")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def taken(build: Path) -> FileLock | None:
    """The checkout's run lock, taken; None, said in one line, if a run holds it."""
    lock = FileLock(build / "run.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        say(
            f"error: the notebooks are being run in this checkout ({build}/run.lock is held): "
            "nothing was done. Wait for that run to end, or stop it."
        )
        return None
    return lock


def folder_problem(build: Path, into: list[Path]) -> str | None:
    """What would keep the run from writing where it writes, said before any work; or None."""
    device = None
    for folder in dict.fromkeys([build, *(path.parent for path in into), *into]):
        if folder.is_symlink() and folder.is_relative_to(build):
            return f"{folder} is a symbolic link: the runner writes only into folders of its own"
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder: move it away"
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            return f"{folder}/ is not writable"
        existing = next(path for path in (folder, *folder.absolute().parents) if path.exists())
        device = existing.stat().st_dev if device is None else device
        if existing.stat().st_dev != device:
            return f"{folder} is on another file system than {build}/, from which files move to it"
    return None


def placed(folder: Path) -> dict[str, int]:
    """Each notebook in ``folder`` and the time it was written."""
    return {path.name: path.stat().st_mtime_ns for path in folder.glob("*.ipynb")}


def run(build: Path, into: list[Path], command: list[str]) -> int:
    """Run make's ``command`` under the lock; the exit status (128 + a stop signal's number)."""
    problem = folder_problem(build, into)
    if problem:
        say(f"error: {problem}. Nothing was run.")
        return 1
    build.mkdir(exist_ok=True)
    lock = taken(build)
    if lock is None:
        return 1
    with lock:
        adopt_orphans()
        before, started, got = placed(into[0]), time.monotonic(), []
        env = {**os.environ, RUN_ENV: str(os.getpid())}
        # its own session: a stop signal reaches it, and the notebooks, only through this process;
        # and a SIGTERM if this process dies (Linux's PR_SET_PDEATHSIG, set in the child)
        dies = ctypes.CDLL(None).prctl if sys.platform == "linux" else lambda *_: 0
        make = subprocess.Popen(
            command, env=env, start_new_session=True, preexec_fn=lambda: dies(1, signal.SIGTERM)
        )

        def forward(signum: int, _frame: object) -> None:
            got.append(signum)
            with suppress(ProcessLookupError):
                os.killpg(make.pid, signum)

        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) != signal.SIG_IGN:  # nohup's stays ignored
                signal.signal(signum, forward)
        watch_parent()
        status = make.wait()
        end_descendants()
        ran = sorted(name for name, at in placed(into[0]).items() if before.get(name) != at)
        if got:
            why = cause[0] if cause else signal.Signals(got[0]).name
            done = f"{', '.join(ran)} had finished and are in place" if ran else "none had finished"
            say(f"interrupted ({why}): {done}; no notebook was half-placed.")
            return 128 + got[0]
        if status == 0 and ran:
            say(f"ran {len(ran)} notebooks in {time.monotonic() - started:.0f} s: {', '.join(ran)}")
        elif status == 0:
            say(
                "nothing to run: no notebook's code, the library, the lock file or the data changed"
            )
        return status


def key(notebook: Path, keyfile: Path, mode: str) -> int:
    """Write the digest of what ``notebook``'s outputs depend on, only if it changed (for make)."""
    digest = hashlib.sha256(mode.encode())
    try:
        cells = json.loads(notebook.read_bytes())["cells"]
        digest.update(
            json.dumps(["".join(c["source"]) for c in cells if c["cell_type"] == "code"]).encode()
        )
    except (ValueError, LookupError, TypeError):  # no notebook: running it will say so
        digest.update(notebook.read_bytes())
    library = sorted(p for p in (ROOT / "src" / "mnist_study").rglob("*") if p.suffix != ".pyc")
    data = FIXTURE_FILE if mode == "smoke" else data_dir() / "mnist_784.npz"
    for path in (*library, ROOT / "requirements.lock", data):
        if path.is_file():
            digest.update(
                str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else "data").encode()
            )
            digest.update(path.read_bytes())
    text = f"{digest.hexdigest()}\n"
    if not keyfile.is_file() or keyfile.read_text() != text:
        keyfile.parent.mkdir(parents=True, exist_ok=True)
        keyfile.with_suffix(".new").write_text(text)
        keyfile.with_suffix(".new").replace(keyfile)
    return 0


def free(build: Path) -> int:
    """0 if no run holds the lock (or this is the run); else 1, said."""
    if os.environ.get(RUN_ENV) or not (build / "run.lock").exists():
        return 0
    lock = taken(build)
    if lock is not None:
        lock.release()
    return 0 if lock else 1


def clean(build: Path) -> int:
    """Empty the results cache and ``build`` (but its lock), unless a run holds the lock."""
    lock = taken(build) if build.is_dir() else None
    if build.is_dir() and lock is None:
        return 1
    shutil.rmtree(cache_dir() / "joblib", ignore_errors=True)  # all the library writes there
    with suppress(OSError):
        cache_dir().rmdir()
    for path in build.iterdir() if build.is_dir() else ():
        if path.name != "run.lock":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=["run", "key", "free", "clean"])
    parser.add_argument("--build", type=Path, default=Path("build"))
    parser.add_argument("--into", type=Path, nargs=2, help="run: notebooks' and figures' folders")
    parser.add_argument(
        "rest", nargs="*", help="key: NOTEBOOK KEYFILE MODE; run: -- make's command"
    )
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    if args.job == "run":
        return run(args.build, args.into, argv[split + 1 :])
    if args.job == "key":
        return key(Path(args.rest[0]), Path(args.rest[1]), args.rest[2])
    return free(args.build) if args.job == "free" else clean(args.build)


if __name__ == "__main__":
    sys.exit(main())
