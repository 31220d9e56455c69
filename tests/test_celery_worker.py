"""A real Celery worker (celery.contrib.testing) consumes the `celery` and `gpu` queues.

With CELERY_BROKER_URL pointing at Redis (CI) this goes through Redis; without it, through the
in-memory transport. Either way the task is routed by the app's real configuration.
"""

import pytest

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_training_tasks_are_routed_to_the_gpu_queue():
    route = app.amqp.router.route({}, "modeltrain.tasks.worker_report")
    assert route["queue"].name == "gpu"
    assert app.amqp.router.route({}, "some.other.task")["queue"].name == "celery"


def test_worker_runs_a_gpu_task_against_the_database(celery_worker_running, project):
    from django.db import connection

    from modeltrain.tasks import worker_report

    result = worker_report.delay()
    report = result.get(timeout=60)
    assert report["queue"] == "gpu"
    assert report["database"] == connection.vendor
    assert report["projects"] == 1  # the worker saw the committed row of this test
    assert report["torch"].startswith("2.")


def test_long_task_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] >= 3600
