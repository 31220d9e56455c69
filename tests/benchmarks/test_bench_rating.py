"""bench_rating end to end at a small scale: the web server as deployed, raters through HTTP, the
count check (no lost or extra judgement, no pair above its overlap), and nothing left behind.
Not a timed test: it asserts the counts, never the speed."""

import re
from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.db import connection

from config.celery import app as celery_app
from preferences.models import Assignment, Judgement

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn's processes see committed rows


def test_bench_rating_serves_raters_and_its_counts_add_up(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("bench_rating measures the PostgreSQL queue")
    db = connection.settings_dict
    # The served app must use the test database the command fills, not the configured one.
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    )
    queued_before, floors_before = _queued_messages(), _shared_floors()
    out = StringIO()
    call_command(
        "bench_rating",
        *("--raters", "3", "--seconds", "2", "--workers", "2", "--prefill", "300"),
        stdout=out,
    )
    report = out.getvalue()
    # A history of finished pairs before the run (5 facets x overlap 2: 30 pairs), left out of
    # the count check below, which would fail if it counted them.
    assert "pre-filled with 300 stored judgements" in report, report
    assert "0 client errors" in report, report
    acked = int(re.search(r"submits/s: [\d.]+ \((\d+) acknowledged", report).group(1))
    assert acked > 0, report
    assert re.search(r"count check: .* -> OK", report), report
    low, high = map(int, re.search(r"submits per rater: min (\d+), .* max (\d+)", report).groups())
    assert 0 <= low <= high <= acked
    # Every rater's connection is found on one of the two server processes.
    split = re.search(r"connections per web server process: ([\d /]+) \(", report).group(1)
    counts = [int(n) for n in split.split(" / ")]
    assert len(counts) == 2 and sum(counts) == 3, report
    assert re.search(r"machine reference: a 10,000,000-step Python loop took [\d.]+ s", report)
    # Nothing left behind: no drain queued in the broker for the deleted project, no session.
    assert _queued_messages() == queued_before
    assert _shared_floors() == floors_before  # the queue floors the server processes shared
    assert not Session.objects.exists()
    assert not Judgement.objects.exists() and not Assignment.objects.exists()  # history too


def _queued_messages() -> int:
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare("celery").message_count


def _shared_floors() -> set[bytes]:
    from benchmarks.rating import _server_cache_url

    return set(RedisCache(_server_cache_url(), {})._cache.get_client().keys("*queue-floor*"))
