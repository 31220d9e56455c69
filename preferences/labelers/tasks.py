"""Celery tasks (default queue): one batch of a labelling run per task, chained until done."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="labelers.label_run_batch", acks_late=True)
def label_run_batch_task(run_id: int) -> dict:
    from .models import LabelRun, RunStatus
    from .services import label_run_batch

    eager = bool(label_run_batch_task.app.conf.task_always_eager)
    try:
        run = label_run_batch(run_id=run_id)
        # Eager (embedded default): chaining would nest one call per batch; loop instead.
        while eager and not run.is_finished:
            run = label_run_batch(run_id=run_id)
    except Exception as exc:
        # An unexpected error must not leave the run "running" forever on the dashboard.
        logger.exception("labelling run %s crashed", run_id)
        LabelRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED, message=f"Crashed: {type(exc).__name__}: {exc}"[:500]
        )
        raise
    if not run.is_finished:
        # The next batch is a new task, so a long run never holds one worker slot for hours
        # and a worker restart loses at most one batch (which the cursor makes resumable).
        label_run_batch_task.delay(run_id)
    return {"run": run_id, "status": run.status, "done": run.done, "failed": run.failed}
