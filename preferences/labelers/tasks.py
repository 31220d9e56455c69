"""Celery tasks (default queue): one batch of a labelling run per task, chained until done."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors of a dependency that comes back (Redis, the broker, PostgreSQL), not of the run."""
    import kombu.exceptions
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    return (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        kombu.exceptions.OperationalError,
        OperationalError,
        InterfaceError,
        ConnectionError,
    )


@shared_task(bind=True, name="labelers.label_run_batch", acks_late=True)
def label_run_batch_task(self, run_id: int) -> dict:
    from core import jobs

    from .jobs import LABEL_RUN_JOB
    from .models import LabelRun, RunStatus
    from .services import label_run_batch

    task_id = self.request.id or ""
    eager = bool(label_run_batch_task.app.conf.task_always_eager)
    try:
        run = label_run_batch(run_id=run_id, task_id=task_id)
        # Eager (embedded default): chaining would nest one call per batch; loop instead.
        while eager and not run.is_finished:
            run = label_run_batch(run_id=run_id, task_id=task_id)
    except jobs.JobBusy:
        return {"run": run_id, "status": "busy"}  # a duplicate message; the holder goes on
    except _transient_errors() as exc:
        # Redis or the database went away mid-batch: the items done so far are stored and the
        # cursor says where to go on. Release the run so the sweep sends it again as soon as the
        # dependency is back; if even that fails, the stale heartbeat gets it taken over.
        logger.warning("labelling run %s paused: %s: %s", run_id, type(exc).__name__, exc)
        try:
            jobs.release(LABEL_RUN_JOB, run_id, task_id=task_id)
        except Exception:  # noqa: BLE001 - the database is down too; staleness covers it
            logger.warning("labelling run %s: could not release; left to go stale", run_id)
        return {"run": run_id, "status": "paused"}
    except Exception as exc:
        # An unexpected error must not leave the run "running" forever on the dashboard.
        logger.exception("labelling run %s crashed", run_id)
        LabelRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED, message=f"Crashed: {type(exc).__name__}: {exc}"[:500]
        )
        raise
    if not run.is_finished:
        # The next batch is a new message, so a long run never holds one worker slot for hours
        # and a worker death loses at most one batch (which the cursor makes resumable). When the
        # broker is down the run stays released and the sweep sends the next batch later.
        jobs.enqueue(LABEL_RUN_JOB, run_id)
    return {"run": run_id, "status": run.status, "done": run.done, "failed": run.failed}
