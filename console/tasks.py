"""Celery task (default queue): run one upload import. Takes an id; idempotent."""

from celery import shared_task

from .services import import_job_run


@shared_task(name="console.import_job_run")
def import_job_run_task(job_id: int) -> str:
    job = import_job_run(job_id=job_id)
    return job.status if job else "missing"
