"""Jobs in one process without a broker (`make run`: eager Celery, ALTPREF_JOB_RUNNER=thread).

Eager Celery runs a task inside the request that starts it, so starting a round kept the browser
waiting for the whole round. Here the request only puts the job on an in-process queue; one
runner thread works through it (one at a time, like a one-slot worker, which also suits SQLite),
and a sweeper thread does what Celery beat does in compose: `core.jobs.sweep` every SWEEP_S.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading

from django.db import connections

from . import jobs

log = logging.getLogger(__name__)


class ThreadRunner:
    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._work, daemon=True, name="job-runner")
        self.thread.start()

    def submit(self, kind: jobs.JobKind, pk: int, task_id: str) -> None:
        self.queue.put((kind, pk, task_id))

    def _work(self):
        while True:
            kind, pk, task_id = self.queue.get()
            try:
                kind.task.apply(args=[pk], task_id=task_id)
            except Exception:  # noqa: BLE001 - the job's row records the failure; keep serving
                log.exception("%s %s failed in the job runner", kind.name, pk)
            finally:
                connections.close_all()
                self.queue.task_done()

    def join(self) -> None:
        """Wait until every submitted job has run (tests)."""
        self.queue.join()


_runner: ThreadRunner | None = None
_lock = threading.Lock()


def runner() -> ThreadRunner:
    global _runner
    with _lock:
        if _runner is None:
            _runner = ThreadRunner()
        return _runner


def start_sweeper(
    every: float | None = None, stop: threading.Event | None = None
) -> threading.Thread:
    """Run the sweep every SWEEP_S seconds in a daemon thread of this process (until `stop`)."""
    every = float(every if every is not None else jobs.conf("SWEEP_S"))
    stop = stop or threading.Event()

    def loop():
        while not stop.wait(every):
            try:
                jobs.sweep()
            except Exception:  # noqa: BLE001 - a database blip must not end the sweeper
                log.warning("job sweep failed; trying again in %s s", every, exc_info=True)
            finally:
                connections.close_all()

    thread = threading.Thread(target=loop, daemon=True, name="job-sweeper")
    thread.start()
    return thread


def warm_imports() -> threading.Thread:
    """Import what job kinds preload (the training configuration: torch, transformers, ~8 s) on
    a thread at start-up, so the first round started from the page does not pay it inside the
    request."""

    def load():
        for module in [m for kind in jobs.kinds() for m in kind.preload]:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the job reports a broken install itself
                log.warning("could not preload %s", module, exc_info=True)

    thread = threading.Thread(target=load, daemon=True, name="warm-imports")
    thread.start()
    return thread
