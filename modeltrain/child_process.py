"""The `train` CLI as a child process group of the gpu worker: start, stop, and end orphans.

Django-free helpers for services._train. The child runs in its own session. A process group
alone does not hold a multi-process run: torchrun (under accelerate launch) starts every worker
in a session of its own. So every process of a launch carries ``ALTPREF_TRAIN_RUN=<output
folder>`` in its environment (inherited through every fork and exec), and "the group" is every
live process on this host with that mark: the launcher and the trainers, whoever their parent is
now. ``<output>/launch.json`` records the launcher's pgid and host. The next attempt of a round
whose worker was SIGKILLed ends what is still training into the folder before relaunching; each
launcher also gets SIGTERM when its worker dies (PR_SET_PDEATHSIG on Linux), which makes the
CLI stop at the next step with a sealed checkpoint instead of training on unobserved.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import modeltrain

LAUNCH_FILE = "launch.json"
RUN_MARK = "ALTPREF_TRAIN_RUN"
STOP_FILE = "STOP"  # the CLI contract: this file stops the run at the next step
STDERR_FILE = "train.stderr"
STDOUT_FILE = "train.stdout"
# The folder that holds the imported `modeltrain` package: the child imports the same code.
REPO_ROOT = Path(modeltrain.__file__).resolve().parents[1]
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: launch.json still lets the next attempt end an orphan


def start(argv: list[str], output: Path, *, env: dict | None = None) -> subprocess.Popen:
    """Start `argv` as a new process group writing to files in `output`; record its pgid."""
    output.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {})}
    path = child_env.get("PYTHONPATH", "")
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)
    child_env.setdefault("OMP_NUM_THREADS", "1")
    child_env[RUN_MARK] = run_mark(output)
    with (
        (output / STDOUT_FILE).open("ab") as stdout,
        (output / STDERR_FILE).open("ab") as stderr,
    ):
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    record = {"pgid": proc.pid, "pid": proc.pid, "host": socket.gethostname(), "argv": argv}
    tmp = output / (LAUNCH_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, output / LAUNCH_FILE)
    return proc


def run_mark(output: Path) -> str:
    return str(Path(output).resolve())


def members(output: Path) -> list:
    """Live processes (psutil) of this host that train into `output`."""
    import psutil

    mark, found = run_mark(output), []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(RUN_MARK) == mark:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _signal_all(procs: list, sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except Exception:  # noqa: BLE001 - gone already, or not ours
            continue


def _wait_gone(output: Path, proc: subprocess.Popen | None, timeout: float) -> list:
    """Wait until no process trains into `output`; what is still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.poll()  # reap the launcher so it does not linger as a zombie
        alive = members(output)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.2)


def stop_group(
    output: Path,
    proc: subprocess.Popen | None = None,
    *,
    stop_grace: float = 30.0,
    term_grace: float = 15.0,
) -> None:
    """End a launch: STOP file (a clean stop with a checkpoint), then SIGTERM to every process
    of it, then SIGKILL; returns once none is left."""
    (output / STOP_FILE).touch()
    alive = _wait_gone(output, proc, stop_grace)
    if alive:
        _signal_all(alive, signal.SIGTERM)
        alive = _wait_gone(output, proc, term_grace)
    if alive:
        _signal_all(alive, signal.SIGKILL)
        _wait_gone(output, proc, 30.0)


def end_orphans(output: Path, *, stop_grace: float = 5.0) -> bool:
    """End what a dead worker left training into `output` on this host; True if there was any."""
    if not members(output):
        return False
    stop_group(output, stop_grace=stop_grace, term_grace=10.0)
    return True


def stderr_tail(output: Path, since: int, limit: int = 4000) -> str:
    """The last `limit` characters this launch wrote to stderr (from byte offset `since`)."""
    path = output / STDERR_FILE
    try:
        with path.open("rb") as handle:
            handle.seek(since)
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()[-limit:]


def stderr_size(output: Path) -> int:
    try:
        return (output / STDERR_FILE).stat().st_size
    except OSError:
        return 0
