"""The PostgreSQL rating path's own machinery: prepared statements, the queue floor, the user
read, the Redis cache client, the consensus worker and the progress panel."""

import re
import uuid
from datetime import UTC, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.cache import ReusingRedisCache
from core.db import PreparedCursor
from preferences.consensus.models import Consensus
from preferences.models import Assignment, AssignmentStatus, ConsensusPending, Judgement
from preferences.rating import floor as queue_floor
from preferences.rating.queue import (
    assignment_next,
    assignment_skip,
    assignment_submit,
    assignment_undo,
)
from preferences.selectors import PROGRESS_MEDIAN_ITEMS, rater_progress

from .factories import all_facets, facet_answers, make_pair, make_pairs, rater_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip(
            "PostgreSQL's own machinery (the rules both databases run are tested elsewhere)"
        )


def test_hot_statements_are_prepared_once_per_connection(project, member):
    make_pair(project=project)
    client = rater_client(project, member, "r1")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/projects/{project.id}/rate/next/").status_code == 200
    logged = [q["sql"] for q in queries if q["sql"].startswith("[prepared]")]
    assert any("altpref_reserve_next" in sql for sql in logged)  # logged like Django's own
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("altpref_reserve_next" in sql for sql in prepared)
    assert any("FROM annotate_project pr" in sql for sql in prepared)  # the rater's state


def test_prepared_cursor_raises_djangos_errors_and_keeps_working(project):
    pair = make_pair(project=project)
    facet = project.facets.first()
    rater = get_user_model().objects.create_user("r1")
    sql = """INSERT INTO preferences_judgement (pair_id, facet_id, kind, rater_user_id, choice,
             shown_order, rationale, client_key, llm_verdict_visible, created_at)
             VALUES (%s::bigint, %s::bigint, 'human', %s::integer, 'A', 'AB', '', '', false,
                     now())"""
    with PreparedCursor(connection) as cursor:
        cursor.execute(sql, [pair.id, facet.id, rater.id])
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute(sql, [pair.id, facet.id, rater.id])  # the same answer twice
        assert cursor.execute("SELECT COUNT(*) FROM preferences_judgement").fetchone()[0] == 1


def test_prepared_cursors_share_one_psycopg_cursor_per_connection_unless_nested():
    with PreparedCursor(connection) as outer:
        outer.execute("SELECT 1 WHERE 1 = %s", [1])
        with PreparedCursor(connection) as inner:
            # Nested: a cursor of its own, so the outer one's result is still there.
            assert inner._cursor is not outer._cursor
            assert inner.execute("SELECT 2 WHERE 1 = %s", [1]).fetchone() == (2,)
        assert inner._cursor.closed and not outer._cursor.closed
        assert outer.fetchone() == (1,)
    with PreparedCursor(connection) as again:
        assert again._cursor is outer._cursor
        assert again.execute("SELECT 3 WHERE 1 = %s", [1]).fetchone() == (3,)


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_gets_a_new_shared_cursor():
    with PreparedCursor(connection) as before:
        before.execute("SELECT 1 WHERE 1 = %s", [1]).fetchone()
    connection.close()
    with PreparedCursor(connection) as after:
        assert after._cursor is not before._cursor
        assert after._cursor.connection is connection.connection
        assert after.execute("SELECT 4 WHERE 1 = %s", [1]).fetchone() == (4,)


def test_prepared_cursor_reads_timestamps_as_django_does_with_the_c_loader(pair):
    """The prepared cursor decodes timestamptz with psycopg's own (C) loader rather than
    Django's Python one: the same aware datetimes in timezone.utc."""
    sql = "SELECT created_at, %s::timestamptz FROM preferences_candidatepair WHERE id = %s"
    given = timezone.now() - timedelta(days=3, microseconds=7)
    with connection.cursor() as cursor:
        cursor.execute(sql, [given, pair.id])
        expected = cursor.fetchone()
    with PreparedCursor(connection) as cursor:
        loader = cursor._cursor.adapters.get_loader(
            cursor._cursor.adapters.types["timestamptz"].oid, 0
        )
        got = cursor.execute(sql, [given, pair.id]).fetchone()
    assert loader.__module__.startswith("psycopg_binary")
    assert got == expected and got[1] == given
    assert all(value.tzinfo is UTC for value in got)


def test_floor_moves_past_finished_pairs_and_back_below_an_undone_one(project, member, monkeypatch):
    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 1)
    monkeypatch.setattr(queue_floor, "_FLOOR", {})
    project.overlap = 1
    project.save()
    pairs = [make_pair(project=project) for _ in range(4)]
    rater = member("r1")
    done = []
    for _ in range(2):
        assignment = assignment_next(project=project, user=rater)
        assignment_submit(assignment_id=assignment.pk, user=rater, answers=facet_answers(project))
        done.append(assignment)
    assignment_next(project=project, user=rater)  # the floors advance on this Next
    # The project's floor and the rater's: the two finished pairs are below both.
    assert [state[0] for state in queue_floor._FLOOR.values()] == [pairs[2].id, pairs[2].id]
    # An undo can reopen a finished pair: this process's floors go back below it.
    assignment_undo(assignment_id=done[0].pk, user=rater)
    assert [state[0] for state in queue_floor._FLOOR.values()] == [pairs[0].id, pairs[0].id]
    # A changed overlap means other pairs are open again: new floors from the first pair.
    project.overlap = 2
    project.save()
    assert queue_floor.queue_floor(connection.cursor(), project, rater) == pairs[0].id


def test_a_rater_ahead_of_the_others_searches_from_their_own_floor(project, member, monkeypatch):
    """Alone in a project of overlap 2, a rater leaves every pair they did open for a second
    rater: the project's floor cannot move, the rater's own floor moves past them (and their
    Next no longer walks them all), and the second rater still gets those pairs first."""
    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 1)
    monkeypatch.setattr(queue_floor, "_FLOOR", {})
    project.overlap = 2
    project.save()
    pairs = make_pairs(project=project, n=6)
    r1, r2 = member("r1"), member("r2")
    for _ in range(3):
        assignment = assignment_next(project=project, user=r1)
        assignment_submit(assignment_id=assignment.pk, user=r1, answers=facet_answers(project))
    skipped = assignment_next(project=project, user=r1)
    assert skipped.pair_id == pairs[3].id
    assignment_skip(assignment_id=skipped.pk, user=r1)
    searched_from = []
    real_step = queue_floor._floor_step
    monkeypatch.setattr(
        queue_floor,
        "_floor_step",
        lambda *a, **k: searched_from.append(real_step(*a, **k)) or searched_from[-1],
    )
    fifth = assignment_next(project=project, user=r1)
    assert fifth.pair_id == pairs[4].id
    key = (project.pk, project.created_at, project.overlap)
    assert queue_floor._FLOOR[key][0] == pairs[0].id  # nothing is full
    assert (
        queue_floor._FLOOR[(*key, 0, r1.pk)][0] == pairs[4].id
    )  # done, done, done, skipped: below
    assert searched_from[-1] == pairs[4].id  # the search started there
    # The second rater finishes the pairs the first one started, oldest first.
    served, starts = [], []
    for _ in range(3):
        assignment = assignment_next(project=project, user=r2)
        served.append(assignment.pair_id)
        starts.append(searched_from[-1])
        assignment_submit(assignment_id=assignment.pk, user=r2, answers=facet_answers(project))
    assert served == [p.id for p in pairs[:3]]
    # From the project's floor, which moves up as the pairs fill.
    assert starts == [p.id for p in pairs[:3]]


def test_pair_reopened_below_another_processes_floor_is_still_served(project, member, monkeypatch):
    monkeypatch.setattr(queue_floor, "_FLOOR", {})
    project.overlap = 1
    project.save()
    first, second = make_pair(project=project), make_pair(project=project)
    r1, r2 = member("r1"), member("r2")
    a1 = assignment_next(project=project, user=r1)
    assignment_submit(assignment_id=a1.pk, user=r1, answers=facet_answers(project))
    key = next(iter(queue_floor._FLOOR))
    queue_floor._FLOOR[key][0] = second.id + 1  # another process's floor, above both pairs
    # r1's submission went away behind that floor (an undo in another process, then expiry).
    Judgement.objects.filter(pair=first).delete()
    Assignment.objects.filter(pk=a1.pk).update(
        status=AssignmentStatus.RESERVED, reserved_until=timezone.now() - timedelta(seconds=1)
    )
    served = {assignment_next(project=project, user=r2).pair_id}
    assignment_submit(
        assignment_id=Assignment.objects.get(rater=r2, status="reserved").pk,
        user=r2,
        answers=facet_answers(project),
    )
    served.add(assignment_next(project=project, user=r2).pair_id)
    assert served == {first.id, second.id}  # the waiting search finds what the floor hides


def test_user_read_refuses_inactive_deleted_and_changed_password_users(project, member):
    make_pair(project=project)
    rater = member("r1")
    client = Client()
    client.force_login(rater)
    url = f"/projects/{project.id}/rate/"
    assert client.get(url).status_code == 200
    rater.set_password("a-new-password-1")  # the session's hash no longer matches
    rater.save()
    assert client.get(url).status_code == 302
    client.force_login(rater)
    assert client.get(url).status_code == 200
    get_user_model().objects.filter(pk=rater.pk).update(is_active=False)
    assert client.get(url).status_code == 302
    get_user_model().objects.filter(pk=rater.pk).update(is_active=True)
    client.force_login(get_user_model().objects.get(pk=rater.pk))
    assert client.get(url).status_code == 200
    Assignment.objects.filter(rater=rater).delete()
    rater.memberships.all().delete()
    rater.delete()
    assert client.get(url).status_code == 302


def test_redis_cache_reuses_one_client_per_pool():
    cache = ReusingRedisCache("redis://127.0.0.1:6379/5", {"KEY_PREFIX": "altpref-test"})
    cache.delete("k")
    assert cache.add("k", {"a": 1}, 5) and not cache.add("k", 2, 5)
    assert cache.get("k") == {"a": 1}
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    cache.delete("k")
    assert cache.get("k") is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_blends_submitted_answers_without_any_reader(
    project, member, celery_worker_running
):
    import time

    pair = make_pair(project=project)
    client = rater_client(project, member, "r1")
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    aid = re.search(r"/rate/items/(\d+)/submit/", body).group(1)
    assert client.post(f"/rate/items/{aid}/submit/", all_facets(project)).status_code == 302
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ConsensusPending.objects.filter(pair=pair).exists():
        time.sleep(0.2)
    assert not ConsensusPending.objects.filter(pair=pair).exists()
    assert Consensus.objects.filter(pair=pair).count() == project.facets.count()


def test_next_function_is_planned_once_per_connection_and_costed_as_one_row():
    # v1 planned each search on every call (the custom plans looked cheaper), which cost three
    # times what running them did; the page read joined to it assumed 1000 rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proconfig, prorows FROM pg_proc WHERE proname = 'altpref_reserve_next'"
        )
        [(config, rows)] = cursor.fetchall()
    assert config == ["plan_cache_mode=force_generic_plan"]
    assert rows == 1


def test_a_new_reservation_comes_with_its_page_in_the_same_statement(project, member, monkeypatch):
    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 4096)  # no floor move in this Next
    pair = make_pair(project=project)
    client = rater_client(project, member, "r1")
    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    reserving = [q["sql"] for q in queries if "altpref_reserve_next" in q["sql"]]
    assert len(reserving) == 1 and "JOIN annotate_alttext aa" in reserving[0]
    assert not [q for q in queries if "WHERE a.id = " in q["sql"]]  # no separate page read
    assignment = Assignment.objects.get(rater__username="r1")
    assert assignment.pair_id == pair.id
    assert f'action="/rate/items/{assignment.id}/submit/"' in body
    assert pair.alt_a.text in body and pair.alt_b.text in body
    # The live reservation's page is read on its own, and shows the same item.
    again = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    assert f'action="/rate/items/{assignment.id}/submit/"' in again
    assert Assignment.objects.filter(rater__username="r1").count() == 1


def test_progress_counts_every_item_and_takes_the_median_of_the_newest(project, member):
    """The judge page (its page statement) and the rating home (the ORM) agree: every item
    counted, the median over the newest PROGRESS_MEDIAN_ITEMS only, and the label says so."""
    rater = member("r1")
    old, new = 300, PROGRESS_MEDIAN_ITEMS
    pairs = make_pairs(project=project, n=old + new)
    start = timezone.now() - timedelta(days=2)
    Assignment.objects.bulk_create(
        Assignment(
            project=project,
            pair=pair,
            rater=rater,
            status=AssignmentStatus.DONE,
            token=uuid.uuid4(),
            reserved_at=start + timedelta(minutes=30 * i),
            # The old items took 1000 s each, the newest 10-29 s: a median over every item
            # would be 1000.
            submitted_at=start
            + timedelta(minutes=30 * i, seconds=1000 if i < old else 10 + (i - old) % 20),
            reserved_until=start + timedelta(minutes=30 * i + 20),
        )
        for i, pair in enumerate(pairs)
    )
    make_pair(project=project)  # the item Next serves
    client = Client()
    client.force_login(rater)

    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    progress = rater_progress(project=project, user=rater)
    assert progress["items_done"] == old + new
    assert progress["median_seconds"] == 19.5  # of 10..29, ten times each
    assert re.search(rf"<dt>Items judged</dt><dd>{old + new}</dd>", body)
    assert f"Median seconds per item (your last {PROGRESS_MEDIAN_ITEMS})</dt><dd>19.5</dd>" in body
    home = client.get(f"/projects/{project.id}/rate/").content.decode()
    assert f"(your last {PROGRESS_MEDIAN_ITEMS})</dt><dd>19.5</dd>" in home


def test_a_new_process_starts_from_the_floors_others_found(project, member, monkeypatch):
    """Floors are shared through the cache: a process that starts (or meets a rater for the
    first time) searches from where the others got to, not from the project's first pair,
    and an undo lowers the shared project floor too."""
    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 1)
    monkeypatch.setattr(queue_floor, "_FLOOR", {})
    project.overlap = 1
    project.save()
    pairs = make_pairs(project=project, n=5)
    rater = member("r1")
    done = []
    for _ in range(3):
        assignment = assignment_next(project=project, user=rater)
        assignment_submit(assignment_id=assignment.pk, user=rater, answers=facet_answers(project))
        done.append(assignment)
    assignment_next(project=project, user=rater)  # the floors move past the three done pairs
    monkeypatch.setattr(queue_floor, "_FLOOR", {})  # a new web process
    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 4)  # its first Next moves nothing
    with CaptureQueriesContext(connection) as queries:
        with PreparedCursor(connection) as cursor:
            assert queue_floor.queue_floor(cursor, project, rater) == pairs[3].id
    assert len(queries) == 0  # neither the project's first pair nor a walk from it
    # An undo in some process lowers the shared project floor: a newer process starts below
    # the reopened pair.
    Assignment.objects.filter(rater=rater, status="reserved").delete()
    assignment_undo(assignment_id=done[0].pk, user=rater)
    monkeypatch.setattr(queue_floor, "_FLOOR", {})
    with PreparedCursor(connection) as cursor:
        assert queue_floor.queue_floor(cursor, project, rater) == pairs[0].id
