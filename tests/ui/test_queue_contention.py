"""A queue contended by other raters is not an empty queue (both databases: the waiting search
is SQLite's only path and PostgreSQL's fallback)."""

import uuid

import pytest
from django.utils import timezone

from preferences.models import Assignment, AssignmentStatus
from preferences.rating import queue
from preferences.rating.queue import assignment_next

from .factories import make_pairs

pytestmark = pytest.mark.django_db


def test_a_rater_beaten_to_many_pairs_in_a_row_still_gets_an_open_one(project, member, monkeypatch):
    """Other raters take each pair the search returns before this rater's recount under the
    lock: more times in a row than the fast search's attempts. The rater still gets the first
    pair nobody took; "nothing left" is only said when the search finds nothing."""
    project.overlap = 1
    project.save()
    pairs = make_pairs(project=project, n=queue._NEXT_ATTEMPTS + 4)
    rater, others = member("r1"), member("r2")
    taken = []
    real_search = queue._open_pair

    def beaten_to_it(**kwargs):
        pair_id = real_search(**kwargs)
        if pair_id is not None and len(taken) < queue._NEXT_ATTEMPTS + 2:
            now = timezone.now()
            Assignment.objects.create(
                project=project, pair_id=pair_id, rater=others, status=AssignmentStatus.DONE,
                shown_order="AB", token=uuid.uuid4(), reserved_at=now, reserved_until=now, submitted_at=now,
            )  # fmt: skip
            taken.append(pair_id)
        return pair_id

    monkeypatch.setattr(queue, "_open_pair", beaten_to_it)
    # As if every pair the fast search tried was locked: straight to the waiting search.
    monkeypatch.setattr(queue, "_reserve_next", lambda **kwargs: None)
    got = assignment_next(project=project, user=rater)
    assert got is not None
    assert taken == [p.id for p in pairs[: queue._NEXT_ATTEMPTS + 2]]
    assert got.pair_id == pairs[queue._NEXT_ATTEMPTS + 2].id
