"""LLM runs as claimed jobs (issue 19): Redis lost mid-batch pauses the run instead of failing
it, and the sweep resumes it; a dead worker's batch is taken over; cancel and retry in the API
and the dashboard."""

from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from core import jobs
from preferences.labelers import services
from preferences.labelers.jobs import LABEL_RUN_JOB
from preferences.labelers.models import LabelRun
from preferences.labelers.services import label_run_start
from preferences.labelers.tasks import label_run_batch_task

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


def test_a_run_that_loses_redis_mid_batch_pauses_and_the_sweep_resumes_it(
    gemini_on, corpus, monkeypatch
):
    real = services.alt_text_llm_correct
    calls = []

    def redis_goes_away_on_the_second_item(**kwargs):
        calls.append(kwargs["alt_text"].pk)
        if len(calls) == 2:
            # What the shared rate limiter raises when Redis stops answering.
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
        return real(**kwargs)

    monkeypatch.setattr(services, "alt_text_llm_correct", redis_goes_away_on_the_second_item)
    run = label_run_start(project=corpus["project"], task="correct")  # eager: runs now
    run.refresh_from_db()
    assert run.status == "running" and run.done == 1  # paused, not failed
    assert run.heartbeat_at is None  # released: the next sweep sends it again

    assert jobs.sweep()["llm-run"] == 1
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("done", 3, 0)


def test_a_dead_workers_batch_is_taken_over(gemini_on, corpus):
    run = label_run_start(project=corpus["project"], task="correct", enqueue=False)
    assert jobs.claim(LABEL_RUN_JOB, run.pk, task_id="killed-worker")
    with pytest.raises(jobs.JobBusy):
        services.label_run_batch(run_id=run.pk, task_id="duplicate")
    assert jobs.sweep()["llm-run"] == 0
    LabelRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs.sweep()["llm-run"] == 1
    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 3)


def test_cancel_and_retry_in_the_api_and_the_dashboard(gemini_on, corpus, client, member):
    project = corpus["project"]
    client.force_login(member("ada", role="admin"))
    run = label_run_start(project=project, task="correct", enqueue=False)
    cancel = client.post(reverse("labelers:api-run-cancel", args=[project.pk, run.pk]))
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    page = client.get(reverse("labelers:runs", args=[project.pk])).content.decode()
    assert reverse("labelers:retry", args=[project.pk, run.pk]) in page

    retry = client.post(reverse("labelers:api-run-retry", args=[project.pk, run.pk]))
    assert retry.status_code == 202  # eager: it ran to the end
    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 3)
    again = client.post(reverse("labelers:api-run-retry", args=[project.pk, run.pk]))
    assert again.status_code == 409 and "Only a failed" in again.json()["message"]

    stopped = LabelRun.objects.create(
        project=project, task="judge", labeler=run.labeler, budget_usd=1, total=1,
        status="failed", message="Crashed",
    )  # fmt: skip
    page = client.post(reverse("labelers:retry", args=[project.pk, stopped.pk]), follow=True)
    assert f"Run {stopped.pk} started again" in page.content.decode()


def test_the_task_drops_a_duplicate_message(gemini_on, corpus):
    run = label_run_start(project=corpus["project"], task="correct", enqueue=False)
    jobs.claim(LABEL_RUN_JOB, run.pk, task_id="holder")
    result = label_run_batch_task.apply(args=[run.pk], task_id="duplicate").get()
    assert result == {"run": run.pk, "status": "busy"}
