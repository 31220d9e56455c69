"""The queue's rules are written once (preferences/rating/rules.py): PostgreSQL's Next function
is the one rendered from them, and where the ORM states a rule too it selects what the SQL does."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from preferences.models import Assignment, AssignmentStatus
from preferences.rating import rules

from .factories import make_pairs

pytestmark = pytest.mark.django_db


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_installed_reserve_function_is_the_rules_one():
    """The function the migrations installed is the one rules.py renders now: a change to the
    rules without a migration that installs it again fails here."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'altpref_reserve_next'")
        [(installed,)] = cursor.fetchall()
    rendered = rules.reserve_function().split("$fn$")[1]
    assert installed == rendered
    assert "FOR NO KEY UPDATE OF p SKIP LOCKED" in installed  # the fast path's lock strategy


def test_live_in_the_orm_and_in_sql_select_the_same_assignments(project, member):
    now = timezone.now()
    raters = [member(f"r{i}") for i in range(6)]
    [pair] = make_pairs(project=project, n=1)
    states = [
        (AssignmentStatus.RESERVED, now + timedelta(minutes=5)),  # live
        (AssignmentStatus.RESERVED, now - timedelta(seconds=1)),  # expired
        (AssignmentStatus.DONE, now + timedelta(minutes=5)),
        (AssignmentStatus.DONE, now - timedelta(minutes=5)),
        (AssignmentStatus.SKIPPED, now + timedelta(minutes=5)),
        (AssignmentStatus.SKIPPED, now - timedelta(minutes=5)),
    ]
    for rater, (status, until) in zip(raters, states, strict=True):
        Assignment.objects.create(
            project=project, pair=pair, rater=rater, status=status, shown_order="AB",
            token=uuid.uuid4(), reserved_at=now - timedelta(minutes=10), reserved_until=until,
        )  # fmt: skip
    orm = set(Assignment.objects.filter(rules.live_q(now)).values_list("id", flat=True))
    live = rules.LIVE.format(a="a", now="%(now)s")
    active = rules.ACTIVE.format(a="a", now="%(now)s")
    adapted = {"now": connection.ops.adapt_datetimefield_value(now)}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT a.id FROM preferences_assignment a WHERE {live}", adapted)
        sql = {row[0] for row in cursor.fetchall()}
        cursor.execute(f"SELECT a.id FROM preferences_assignment a WHERE {active}", adapted)
        slots = {row[0] for row in cursor.fetchall()}
    by_rater = dict(Assignment.objects.values_list("rater_id", "id"))
    assert orm == sql == {by_rater[raters[0].pk]}
    assert all(rules.is_live(a, now) == (a.pk in orm) for a in Assignment.objects.all())
    # A slot of the overlap: the live reservation and both submitted ones, expired or not.
    assert slots == {by_rater[raters[i].pk] for i in (0, 2, 3)}
