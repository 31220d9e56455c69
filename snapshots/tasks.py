"""Celery task (default queue): run one recorded snapshot export. Takes an id; idempotent."""

from celery import shared_task

from .services import snapshot_run


@shared_task(bind=True, name="snapshots.run", acks_late=True)
def snapshot_run_task(self, snapshot_id: int) -> str:
    snapshot = snapshot_run(snapshot_id=snapshot_id, task_id=self.request.id or "")
    return snapshot.status if snapshot else "missing"
