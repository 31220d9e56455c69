"""Submit asks for a consensus drain after every commit; a web process skips the cache while
the drain task it knows is waiting will still see the change, and never longer."""

from types import SimpleNamespace

import pytest
from django.core.cache import cache

from preferences.consensus import services

PROJECT = 987_654_321  # no such project: the queued drains find nothing to do


@pytest.fixture
def clock(monkeypatch):
    now = SimpleNamespace(t=1_000.0)
    monkeypatch.setattr(services, "time", SimpleNamespace(time=lambda: now.t))
    monkeypatch.setattr(services, "_drain_covered_until", {})
    cache.delete(services._drain_key(PROJECT))
    yield now
    cache.delete(services._drain_key(PROJECT))


@pytest.fixture
def eager(settings):
    """Sets whether Celery runs tasks inline, in both places it is read: the app reads
    Django's setting unless its own conf was set (the Celery worker fixture sets it), and
    consensus_drain_soon reads the setting."""
    from config.celery import app

    changes = app.conf.changes
    before = changes.get("task_always_eager", _UNSET)

    def set_eager(on: bool):
        settings.CELERY_TASK_ALWAYS_EAGER = on
        app.conf.task_always_eager = on

    yield set_eager
    if before is _UNSET:
        changes.pop("task_always_eager", None)  # read from Django's setting again
    else:
        app.conf.task_always_eager = before


_UNSET = object()


@pytest.fixture
def cache_calls(monkeypatch):
    calls = []
    for name in ("add", "get"):
        real = getattr(cache, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(cache, name, spy)
    return calls


def test_queued_drain_covers_the_submits_until_shortly_before_it_may_start(
    eager, clock, cache_calls
):
    eager(False)
    services.consensus_drain_soon(project_id=PROJECT)
    assert cache_calls == ["get", "add"]  # none waiting, so one queued; the key holds when
    assert cache.get(services._drain_key(PROJECT)) == 1_000.0
    cache_calls.clear()

    clock.t = 1_000.0 + services.DRAIN_COUNTDOWN_S - services.DRAIN_CLOCK_MARGIN_S - 0.01
    services.consensus_drain_soon(project_id=PROJECT)
    assert cache_calls == []  # the waiting task cannot have started: no round trip

    clock.t += 0.02  # too close to the task's start: ask again (it is still waiting)
    services.consensus_drain_soon(project_id=PROJECT)
    assert cache_calls == ["get"]  # one round trip: the key says it is still waiting
    cache_calls.clear()

    services.consensus_drain_armed_clear(project_id=PROJECT)  # the task starts
    clock.t += 0.1
    services.consensus_drain_soon(project_id=PROJECT)  # so this change needs a new one
    assert cache_calls == ["get", "add"]
    assert cache.get(services._drain_key(PROJECT)) == clock.t


@pytest.mark.django_db
def test_eager_drains_are_never_assumed_to_be_waiting(eager, clock, cache_calls):
    eager(True)  # the task runs inline and has finished on return
    services.consensus_drain_soon(project_id=PROJECT)
    services.consensus_drain_soon(project_id=PROJECT)
    assert cache_calls == ["get", "add", "get", "add"]  # each queued (and ran) its own
    assert services._drain_covered_until == {}
