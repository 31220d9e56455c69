"""Training rounds through the shared job outbox and sweep (issue 19): a round left queued
without a message (broker down at start) is sent by the sweep; one whose worker's heartbeat is
older than 3 x HEARTBEAT_S is sent again so a live worker takes it over; a round a live worker
holds, and an external round, are left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobs
from modeltrain import tasks
from modeltrain.models import RoundStatus, TrainingRound

from .test_rounds import start

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Round ids the sweep sent (the messages are recorded, not run: training is tested
    elsewhere)."""
    from celery import current_app

    ids = []
    before = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    monkeypatch.setattr(tasks.round_run_task, "apply_async", lambda args, **kw: ids.append(args[0]))
    yield ids
    current_app.conf.task_always_eager = before


def test_the_sweep_sends_unsent_and_dead_rounds_only(
    loop_data, sent, django_capture_on_commit_callbacks, monkeypatch
):
    from modeltrain import services

    monkeypatch.setattr(services, "_enqueue", lambda pk: False)  # the broker was down
    minute_ago = timezone.now() - timedelta(minutes=1)
    unsent = start(loop_data, django_capture_on_commit_callbacks)
    dead = start(loop_data, django_capture_on_commit_callbacks)
    live = start(loop_data, django_capture_on_commit_callbacks)
    external = start(loop_data, django_capture_on_commit_callbacks, external=True)
    TrainingRound.objects.update(created_at=minute_ago)
    stale = timezone.now() - timedelta(seconds=3 * services.heartbeat_seconds() + 1)
    TrainingRound.objects.filter(pk=dead.pk).update(status=RoundStatus.RUNNING, heartbeat_at=stale)
    TrainingRound.objects.filter(pk=live.pk).update(
        status=RoundStatus.RUNNING, heartbeat_at=timezone.now()
    )
    TrainingRound.objects.filter(pk=external.pk).update(status=RoundStatus.QUEUED)

    assert jobs.sweep()["round"] == 2
    assert sorted(sent) == sorted([unsent.pk, dead.pk])
    # The dead round's message is taken by round_claim, which sees the stale heartbeat.
    assert services.round_claim(round_id=dead.pk).attempts == 1
    # Sent again only after REQUEUE_WAITING_S (a lost message), not on every sweep.
    assert jobs.sweep()["round"] == 0
