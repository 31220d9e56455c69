"""Celery task (default queue): run one recorded snapshot export. Takes an id; idempotent."""

from celery import shared_task

from .services import snapshot_run


@shared_task(name="snapshots.run")
def snapshot_run_task(snapshot_id: int) -> str:
    snapshot = snapshot_run(snapshot_id=snapshot_id)
    return snapshot.status if snapshot else "missing"
