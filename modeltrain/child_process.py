"""The `train` CLI as a child process group of the gpu worker: start, stop, and end orphans.

Django-free helpers for services._train. The child runs in its own session (its pid is its
process group id), so ending the round ends the launcher and every training process it started
with one signal. Its pgid is written to ``<output>/launch.json`` (with the host) so that the next
attempt of a round whose worker was SIGKILLed can end the orphaned group before relaunching;
each child also gets SIGTERM when the worker dies (PR_SET_PDEATHSIG on Linux), which makes the
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


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies of reaped parents excluded)."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(pgid: int, proc: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the direct child so it does not linger as a zombie
        if not group_alive(pgid):
            return True
        time.sleep(0.2)
    return False


def stop_group(
    pgid: int,
    output: Path,
    proc: subprocess.Popen | None = None,
    *,
    stop_grace: float = 30.0,
    term_grace: float = 15.0,
) -> None:
    """End a training group: STOP file (a clean stop with a checkpoint), then SIGTERM to the
    group, then SIGKILL; returns once no process of the group is left."""
    (output / STOP_FILE).touch()
    if _wait_gone(pgid, proc, stop_grace):
        return
    _signal_group(pgid, signal.SIGTERM)
    if _wait_gone(pgid, proc, term_grace):
        return
    _signal_group(pgid, signal.SIGKILL)
    _wait_gone(pgid, proc, 30.0)


def end_orphan(output: Path, *, stop_grace: float = 5.0) -> int | None:
    """End the group a dead worker left training in `output` (same host only); its pgid or None."""
    try:
        record = json.loads((output / LAUNCH_FILE).read_text())
    except (OSError, ValueError):
        return None
    pgid = record.get("pgid")
    if not isinstance(pgid, int) or record.get("host") != socket.gethostname():
        return None
    if pgid == os.getpgid(0) or not group_alive(pgid):
        return None
    stop_group(pgid, output, stop_grace=stop_grace, term_grace=10.0)
    return pgid


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
