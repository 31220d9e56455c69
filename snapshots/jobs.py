"""Snapshot exports as core.jobs jobs: claimed with a heartbeat, enqueued through the outbox."""

from core.jobs import JobKind, register

from .models import SnapshotStatus

SNAPSHOT_JOB = register(
    JobKind(
        name="snapshot",
        model_path="snapshots.Snapshot",
        task_path="snapshots.tasks:snapshot_run_task",
        waiting=(SnapshotStatus.PENDING,),
        active=(SnapshotStatus.RUNNING,),
        running=SnapshotStatus.RUNNING,
    )
)
