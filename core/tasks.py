"""Celery beat's periodic task: the job sweep (core.jobs.sweep)."""

from celery import shared_task


@shared_task(name="core.jobs_sweep", ignore_result=True)
def jobs_sweep_task() -> dict:
    from .jobs import sweep

    return sweep()
