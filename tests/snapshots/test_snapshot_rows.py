"""Snapshot rows: created by admins, exported by a real Celery worker, frozen once done."""

import os
import stat
import time

import pytest

from snapshots.models import Snapshot, SnapshotImmutable, SnapshotStatus


def _create(labelled, **kwargs):
    from snapshots.services import snapshot_create, snapshot_filters_build

    filters = snapshot_filters_build(kind="palt", project=labelled.project, **kwargs)
    return snapshot_create(
        user=labelled.admin,
        project=labelled.project,
        kind="palt",
        filters=filters,
        formats=["mcmdpo", "parquet"],
    )


def test_completed_snapshot_is_immutable(labelled, django_capture_on_commit_callbacks, settings):
    from snapshots.services import _sha256_file, snapshot_run, snapshot_verify

    with django_capture_on_commit_callbacks(execute=False):
        snapshot = _create(labelled)
    done = snapshot_run(snapshot_id=snapshot.pk)
    assert done.status == SnapshotStatus.DONE and done.progress == 100
    folder = settings.MEDIA_ROOT + f"/snapshots/{done.pk}"
    assert done.checksum == _sha256_file(__import__("pathlib").Path(folder) / "manifest.json")
    assert done.counts["records"] == 23 and snapshot_verify(folder=folder) == []
    assert not os.stat(folder + "/palt.json").st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    done.kind = "talt"
    with pytest.raises(SnapshotImmutable):
        done.save()
    with pytest.raises(SnapshotImmutable):
        Snapshot.objects.filter(pk=done.pk).update(counts={})
    with pytest.raises(SnapshotImmutable):
        done.delete()
    with pytest.raises(SnapshotImmutable):
        Snapshot.objects.all().delete()
    stored = Snapshot.objects.get(pk=done.pk)
    assert stored.kind == "palt" and stored.counts["records"] == 23

    # Running the task again (a redelivery) leaves the finished snapshot alone.
    assert snapshot_run(snapshot_id=done.pk).checksum == done.checksum


def test_failed_export_is_recorded_and_leaves_no_folder(
    labelled, django_capture_on_commit_callbacks, settings
):
    from annotate.models import Image
    from snapshots.services import snapshot_run

    os.remove(os.path.join(settings.MEDIA_ROOT, Image.objects.first().file.name))
    with django_capture_on_commit_callbacks(execute=False):
        snapshot = _create(labelled)
    failed = snapshot_run(snapshot_id=snapshot.pk)
    assert failed.status == SnapshotStatus.FAILED and "missing from storage" in failed.message
    assert not os.path.exists(settings.MEDIA_ROOT + f"/snapshots/{failed.pk}")
    failed.delete()  # only completed snapshots are frozen


def test_non_admin_cannot_create(labelled):
    from core.errors import PermissionDenied
    from snapshots.services import snapshot_create, snapshot_filters_build

    filters = snapshot_filters_build(kind="palt", project=labelled.project)
    with pytest.raises(PermissionDenied):
        snapshot_create(
            user=labelled.reviewer,
            project=labelled.project,
            kind="palt",
            filters=filters,
            formats=["mcmdpo"],
        )


@pytest.mark.django_db(transaction=True)
def test_snapshot_runs_on_a_real_worker_after_commit(labelled, celery_worker_running):
    snapshot = _create(labelled)
    assert snapshot.task_id  # set when the task was enqueued, after the row committed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        snapshot.refresh_from_db()
        if snapshot.status in (SnapshotStatus.DONE, SnapshotStatus.FAILED):
            break
        time.sleep(0.2)
    assert snapshot.status == SnapshotStatus.DONE, snapshot.message
    assert set(snapshot.manifest["files"]) == {"palt.json", "palt.parquet"}
