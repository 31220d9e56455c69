"""A labelling run goes through a real Celery worker on the default queue (Redis in CI)."""

import time

import pytest

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_run_is_routed_to_the_default_queue():
    assert app.amqp.router.route({}, "labelers.label_run_batch")["queue"].name == "celery"


def test_a_run_started_like_the_dashboard_does_finishes_on_a_worker(
    gemini_on, corpus, celery_worker_running
):
    from preferences.labelers.models import LabelRun
    from preferences.labelers.services import label_run_start
    from preferences.models import Judgement

    run = label_run_start(project=corpus["project"], task="judge")  # enqueued on commit
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = LabelRun.objects.get(pk=run.pk)
        if run.is_finished:
            break
        time.sleep(0.2)
    assert (run.status, run.done, run.failed) == ("done", 3, 0)
    assert len(gemini_on.requests) == 6  # 3 pairs × both orders
    facets = corpus["project"].facets.count()
    assert Judgement.objects.filter(kind="llm").count() == 3 * facets
    # The consensus follows the LLM judgements in: their writes marked the pairs, and the
    # consensus.refresh task they queued runs on the worker a moment later.
    from preferences.consensus.models import Consensus

    built = Consensus.objects.filter(facet__project=corpus["project"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and built.count() < 3 * facets:
        time.sleep(0.2)
    assert built.count() == 3 * facets
