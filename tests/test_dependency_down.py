"""Redis or PostgreSQL down (issue 19): sessions fall back to the database, pages answer a 503
"temporarily unavailable" of the app's own instead of a 500, and in `make run`'s eager mode a
job starts on the runner thread instead of inside the request."""

import socket
import threading
import time

import pytest
from django.db import OperationalError
from django.test import Client

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


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def redis_down(settings):
    from django.core.cache import caches

    url = f"redis://127.0.0.1:{_closed_port()}/0"
    opts = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    yield lambda backend: settings.__setattr__(
        "CACHES", {"default": {"BACKEND": backend, "LOCATION": url, "OPTIONS": opts}}
    )
    caches["default"].close()


def test_logged_in_pages_keep_working_with_redis_down(redis_down, settings, member, project):
    redis_down("core.cache.DegradingRedisCache")
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    client = Client()
    member("ann", role="admin")
    assert client.login(username="ann", password="pw-ann")  # session written to the database
    for _ in range(3):
        page = client.get("/")
        assert page.status_code == 200 and "ann" in page.content.decode()
    from django.core.cache import cache

    assert cache.get("anything", "fallback") == "fallback"
    assert cache.add("debounce", 1) is True


def test_without_the_degrading_cache_redis_down_is_a_503_page_not_a_500(
    redis_down, settings, member, project
):
    # Django's own Redis cache raises when Redis is down (what every logged-in page hit before
    # issue 19): the page is the app's 503, the API a JSON 503, never a 500.
    redis_down("django.core.cache.backends.redis.RedisCache")
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    client = Client(raise_request_exception=False)
    client.force_login(member("ann", role="admin"))  # the session row is in the database
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    page = client.get("/")
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert "Temporarily unavailable" in page.content.decode()
    api = client.get("/api/projects/")
    assert api.status_code == 503 and "temporarily unavailable" in api.json()["message"]


def test_a_database_error_in_a_view_is_a_503(client, member, project, monkeypatch):
    from annotate import views

    client.force_login(member("ann", role="admin"))

    def down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")

    monkeypatch.setattr(views, "render", down)
    page = client.get("/")
    assert page.status_code == 503 and "Temporarily unavailable" in page.content.decode()


def test_thread_runner_returns_at_once_and_runs_the_job(settings, labelled_for_runner):
    from celery import current_app

    from core.job_runner import runner
    from snapshots.models import Snapshot
    from snapshots.selectors import SnapshotFilters
    from snapshots.services import snapshot_create

    project, admin = labelled_for_runner
    settings.ALTPREF_JOBS = {**settings.ALTPREF_JOBS, "RUNNER": "thread"}
    assert current_app.conf.task_always_eager
    gate = threading.Event()

    class Blocker:  # holds the runner thread until the start has returned
        name = "blocker"
        task = type("T", (), {"apply": staticmethod(lambda **kw: gate.wait(10))})

    runner().queue.put((Blocker, 0, ""))
    started = time.monotonic()
    snapshot = snapshot_create(
        user=admin,
        project=project,
        kind="talt",
        filters=SnapshotFilters(project_id=project.pk),
        formats=["jsonl"],
    )
    assert time.monotonic() - started < 2 and snapshot.status == "pending"
    gate.set()
    runner().join()
    assert Snapshot.objects.get(pk=snapshot.pk).status == "done"


@pytest.fixture
def labelled_for_runner(project, member):
    return project, member("boss", role="admin")


def test_the_sweeper_thread_of_make_run_sends_a_job_left_unsent(labelled_for_runner):
    from datetime import timedelta

    from django.utils import timezone

    from core.job_runner import start_sweeper
    from snapshots.models import Snapshot

    project, _ = labelled_for_runner
    unsent = Snapshot.objects.create(project=project, kind="talt", formats=["jsonl"])
    Snapshot.objects.filter(pk=unsent.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    stop = threading.Event()
    sweeper = start_sweeper(every=0.1, stop=stop)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Snapshot.objects.get(pk=unsent.pk).status != "done":
        time.sleep(0.2)
    stop.set()
    sweeper.join(5)
    assert Snapshot.objects.get(pk=unsent.pk).status == "done"
