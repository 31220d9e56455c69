"""The rater's progress row (preferences_raterprogress), kept by PostgreSQL triggers on the
assignments: after every kind of change it says what counting the history says
(preferences.selectors.rater_progress), and deleting projects, raters or assignments in bulk
works and leaves nothing behind."""

import random
import statistics
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from preferences.models import Assignment, AssignmentStatus, RaterProgress
from preferences.rating.queue import assignment_next, assignment_submit, assignment_undo
from preferences.selectors import PROGRESS_MEDIAN_ITEMS, rater_progress

from .factories import make_pair, make_pairs
from .test_concurrency import run_together

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the triggers are PostgreSQL's (other databases count from the history)")


def _kept(project, rater) -> tuple[int, float | None]:
    row = RaterProgress.objects.filter(project=project, rater=rater).first()
    if row is None:
        return 0, None
    seconds = row.recent_seconds
    return row.items_done, round(statistics.median(seconds), 1) if seconds else None


def _counted(project, rater) -> tuple[int, float | None]:
    progress = rater_progress(project=project, user=rater, with_corrections=False)
    return progress["items_done"], progress["median_seconds"]


def _done(project, rater, pair, *, start, minutes, seconds):
    return Assignment(
        project=project,
        pair=pair,
        rater=rater,
        status=AssignmentStatus.DONE,
        token=uuid.uuid4(),
        reserved_at=start + timedelta(minutes=minutes),
        submitted_at=start + timedelta(minutes=minutes, seconds=seconds),
        reserved_until=start + timedelta(minutes=minutes + 20),
    )


def test_every_change_to_the_history_keeps_the_row_equal_to_a_recount(project, member):
    """Submits in and out of time order, more than the median's window, then undo, skip,
    re-timing, moving and deleting: after each step the row equals the history's count."""
    rng = random.Random(7)
    rater, other = member("r1"), member("r2")
    n = PROGRESS_MEDIAN_ITEMS + 40
    pairs = make_pairs(project=project, n=n + 10)
    start = timezone.now() - timedelta(days=3)
    # Shuffled: about half arrive older than the newest so far (the recount path).
    order = list(range(n))
    rng.shuffle(order)
    for k, i in enumerate(order):
        _done(
            project, rater, pairs[i], start=start, minutes=30 * i, seconds=rng.randint(5, 90)
        ).save()
        if k % 37 == 0:
            assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater)[0] == n

    mine = list(Assignment.objects.filter(rater=rater).order_by("submitted_at", "id"))
    newest, older = mine[-1], mine[5]
    # Undo of the newest: the 201st newest comes back into the window.
    Assignment.objects.filter(pk=newest.pk).update(
        status=AssignmentStatus.RESERVED, submitted_at=None
    )
    assert _kept(project, rater) == _counted(project, rater)
    # A submission re-timed, one skipped, one moved to another rater.
    Assignment.objects.filter(pk=mine[-2].pk).update(
        submitted_at=mine[-2].reserved_at + timedelta(seconds=999)
    )
    assert _kept(project, rater) == _counted(project, rater)
    Assignment.objects.filter(pk=older.pk).update(status=AssignmentStatus.SKIPPED)
    assert _kept(project, rater) == _counted(project, rater)
    Assignment.objects.filter(pk=mine[-3].pk).update(rater=other)
    assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, other) == _counted(project, other) == (1, _counted(project, other)[1])
    # Deleted in bulk: one statement, every rater counted again once.
    Assignment.objects.filter(pk__in=[a.pk for a in mine[-60:-30]]).delete()
    assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater)[0] == n - 1 - 1 - 1 - 30  # undone, skipped, moved, deleted
    # Reserved and expired rows are not progress.
    Assignment.objects.create(
        project=project,
        pair=pairs[-1],
        rater=rater,
        token=uuid.uuid4(),
        reserved_at=start,
        reserved_until=start,
    )
    assert _kept(project, rater) == _counted(project, rater)


def test_the_rating_path_keeps_it_through_submit_and_undo(project, member):
    """Next, Submit (the guarded statement) and undo as the pages run them, and the judge page
    shows the row's numbers."""
    rater = member("r1")
    for _ in range(4):
        make_pair(project=project)
    answers = {f.key: "A" for f in project.facets.filter(is_active=True)}
    done = []
    for _ in range(3):
        assignment = assignment_next(project=project, user=rater)
        assignment_submit(assignment_id=assignment.pk, user=rater, answers=answers)
        done.append(assignment)
        assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater)[0] == 3
    assignment_undo(assignment_id=done[-1].pk, user=rater)
    assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater)[0] == 2

    client = Client()
    client.force_login(rater)
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    assert "<dt>Items judged</dt><dd>2</dd>" in body


def test_a_rater_submitting_from_two_tabs_at_once_is_counted_once_per_item(
    transactional_db, project, member
):
    """Two connections submit for the same rater together, again and again: the row's lock
    makes them take turns, so no submission is lost or counted twice."""
    rater = member("r1")
    pairs = make_pairs(project=project, n=40)
    answers = {f.key: "B" for f in project.facets.filter(is_active=True)}
    reserved = []
    for pair in pairs:
        now = timezone.now()
        reserved.append(
            Assignment.objects.create(
                project=project,
                pair=pair,
                rater=rater,
                token=uuid.uuid4(),
                reserved_at=now,
                reserved_until=now + timedelta(minutes=10),
            )
        )

    def submit_half(tab):
        for assignment in reserved[tab::2]:
            assignment_submit(assignment_id=assignment.pk, user=rater, answers=answers)

    run_together(2, submit_half)
    assert _kept(project, rater) == _counted(project, rater)
    assert _kept(project, rater)[0] == 40


def test_the_fill_counts_existing_history(project, member):
    """What the migration runs over every (project, rater) with submitted items."""
    rater = member("r1")
    start = timezone.now() - timedelta(days=1)
    for i, pair in enumerate(make_pairs(project=project, n=12)):
        _done(project, rater, pair, start=start, minutes=10 * i, seconds=10 + i).save()
    expected = _counted(project, rater)
    RaterProgress.objects.all().delete()
    assert _kept(project, rater) == (0, None)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT altpref_rater_progress_recount(%s, %s, true)", [project.id, rater.id]
        )
    assert _kept(project, rater) == expected == (12, 15.5)


def test_deleting_a_project_or_a_rater_takes_their_rows_along(project, member):
    rater, other = member("r1"), member("r2")
    start = timezone.now() - timedelta(days=1)
    pairs = make_pairs(project=project, n=6)
    for i, pair in enumerate(pairs[:3]):
        _done(project, rater, pair, start=start, minutes=i, seconds=30).save()
    for i, pair in enumerate(pairs[3:]):
        _done(project, other, pair, start=start, minutes=i, seconds=30).save()
    assert RaterProgress.objects.count() == 2
    other.delete()
    assert list(RaterProgress.objects.values_list("rater_id", "items_done")) == [(rater.id, 3)]
    project.delete()
    assert not RaterProgress.objects.exists()
