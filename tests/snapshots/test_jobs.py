"""Snapshot exports as claimed jobs (issue 19): a broker outage at start answers at once and
leaves the row for the sweep; a dead worker's export is taken over and its `.partial` folder
cleaned; a duplicate message is dropped; cancel and retry in the page and the API."""

from datetime import timedelta
from pathlib import Path

import kombu.exceptions
import pytest
from django.conf import settings
from django.utils import timezone

from core import jobs
from snapshots.jobs import SNAPSHOT_JOB
from snapshots.models import Snapshot, SnapshotStatus
from snapshots.tasks import snapshot_run_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def eager_jobs():
    """Job messages run inline in both CI passes (the PostgreSQL pass has a Redis broker; the
    real worker and broker are exercised by tests/faults)."""
    from celery import current_app

    before = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = before


class _Broker:
    """Publishing fails as kombu fails when Redis refuses connections (the real outage runs in
    tests/faults); eager mode off so the outbox takes the publishing path."""

    def __init__(self):
        from celery import current_app

        self.conf = current_app.conf
        self.eager = self.conf.task_always_eager

    def down(self):
        def refuse(*args, **kwargs):
            raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379.")

        self.conf.task_always_eager = False
        snapshot_run_task.apply_async = refuse

    def up(self):
        """The queue is back; messages run inline (eager) so the test sees them finish."""
        self.conf.task_always_eager = True
        snapshot_run_task.__dict__.pop("apply_async", None)


@pytest.fixture
def broker_down():
    broker = _Broker()
    broker.down()
    yield broker
    broker.up()
    broker.conf.task_always_eager = broker.eager


def _partial(snapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / f"snapshots/{snapshot.pk}.partial"


def test_a_start_while_the_broker_is_down_answers_at_once_and_the_sweep_sends_it(
    labelled, client, broker_down
):
    client.force_login(labelled.admin)
    page = client.post(
        f"/projects/{labelled.project.pk}/snapshots/new",
        {"kind": "talt", "format": ["jsonl"], "split": ["train"]},
        follow=True,
    )
    assert page.status_code == 200
    assert "will start when the queue is back" in page.content.decode()
    first = Snapshot.objects.get()
    assert first.status == SnapshotStatus.PENDING and first.waiting_for_queue

    api = client.post(
        f"/api/projects/{labelled.project.pk}/snapshots/",
        {"kind": "talt", "formats": ["jsonl"]},
        content_type="application/json",
    )
    assert api.status_code == 202
    assert "will start when the queue is back" in api.json()["notice"]

    # The queue is back: the sweep sends both (eager here, so they run to the end).
    broker_down.up()
    Snapshot.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert jobs.sweep()["snapshot"] == 2
    assert set(Snapshot.objects.values_list("status", flat=True)) == {SnapshotStatus.DONE}


def test_a_dead_workers_export_is_taken_over_and_its_partial_folder_cleaned(labelled):
    snapshot = Snapshot.objects.create(project=labelled.project, kind="talt", formats=["jsonl"])
    snapshot.filters = {"project_id": labelled.project.pk, "splits": ["train"]}
    snapshot.save()
    # A worker claimed it, wrote half a folder, and was SIGKILLed: its heartbeat stops.
    assert jobs.claim(SNAPSHOT_JOB, snapshot.pk, task_id="dead-worker")
    _partial(snapshot).mkdir(parents=True)
    (_partial(snapshot) / "talt.jsonl").write_text("half a file")
    Snapshot.objects.filter(pk=snapshot.pk).update(progress=99)

    assert jobs.sweep()["snapshot"] == 0  # heartbeat fresh: the worker may be alive
    stale = timezone.now() - timedelta(seconds=settings.ALTPREF_JOBS["STALE_S"] + 1)
    Snapshot.objects.filter(pk=snapshot.pk).update(heartbeat_at=stale)
    assert jobs.sweep()["snapshot"] == 1

    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.DONE and snapshot.attempts == 1
    assert not _partial(snapshot).exists()
    assert "talt.jsonl" in snapshot.manifest["files"]


def test_a_duplicate_message_for_a_live_export_is_dropped(labelled):
    from snapshots.services import snapshot_run

    snapshot = Snapshot.objects.create(project=labelled.project, kind="talt", formats=["jsonl"])
    assert jobs.claim(SNAPSHOT_JOB, snapshot.pk, task_id="live-worker")
    again = snapshot_run(snapshot_id=snapshot.pk, task_id="duplicate")
    assert again.status == SnapshotStatus.RUNNING and again.task_id == "live-worker"


def test_an_export_that_keeps_killing_its_worker_fails_with_a_reason(labelled, settings):
    snapshot = Snapshot.objects.create(project=labelled.project, kind="talt", formats=["jsonl"])
    stale = timezone.now() - timedelta(hours=1)
    Snapshot.objects.filter(pk=snapshot.pk).update(
        status=SnapshotStatus.RUNNING, heartbeat_at=stale, attempts=3
    )
    _partial(snapshot).mkdir(parents=True)
    snapshot_run_task.apply(args=[snapshot.pk], task_id="fourth")
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.FAILED
    assert "stopped 3 times without finishing" in snapshot.message
    assert not _partial(snapshot).exists()


def test_cancel_and_retry_in_the_page_and_the_api(labelled, client, broker_down):
    client.force_login(labelled.admin)
    api = client.post(
        f"/api/projects/{labelled.project.pk}/snapshots/",
        {"kind": "talt", "formats": ["jsonl"]},
        content_type="application/json",
    )
    pk = api.json()["id"]
    detail = client.get(f"/snapshots/{pk}/").content.decode()
    assert "Cancel export" in detail and "Retry export" not in detail

    cancelled = client.post(f"/api/snapshots/{pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/snapshots/{pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["message"]
    assert "Retry export" in client.get(f"/snapshots/{pk}/").content.decode()

    broker_down.up()  # the queue is back: the retry runs (eagerly here)
    page = client.post(f"/snapshots/{pk}/retry", follow=True)
    assert page.status_code == 200 and f"Snapshot {pk} started again" in page.content.decode()
    assert Snapshot.objects.get(pk=pk).status == SnapshotStatus.DONE
    done = client.post(f"/api/snapshots/{pk}/retry/")
    assert done.status_code == 409 and "Only a failed or cancelled" in done.json()["message"]

    # A page cancel of a running export: the worker stops at its next record.
    running = Snapshot.objects.create(project=labelled.project, kind="talt", formats=["jsonl"])
    jobs.claim(SNAPSHOT_JOB, running.pk, task_id="w")
    client.post(f"/snapshots/{running.pk}/cancel")
    running.refresh_from_db()
    assert running.status == SnapshotStatus.CANCELLED and "Cancelled" in running.message
