"""The queue: overlap, no repeats, reclaimed reservations, skip policy, undo, shown order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import ApplicationError, NotFound
from preferences.models import Assignment, Judgement, QueuePolicy
from preferences.rating.queue import (
    assignment_next,
    assignment_skip,
    assignment_submit,
    assignment_undo,
    displayed_to_stored,
)

from .factories import make_pair

pytestmark = pytest.mark.django_db


def answers(project, choice="A"):
    return {f.key: choice for f in project.facets.all()}


def test_next_honours_overlap_and_never_repeats_a_pair(project, member):
    project.overlap = 2
    project.save()
    pair = make_pair(project=project)
    r1, r2, r3 = member("r1"), member("r2"), member("r3")
    a1 = assignment_next(project=project, user=r1)
    assert assignment_next(project=project, user=r1) == a1  # Next again: same live reservation
    a2 = assignment_next(project=project, user=r2)
    assert a1.pair == a2.pair == pair
    assert assignment_next(project=project, user=r3) is None  # two live raters = overlap 2
    assignment_submit(assignment_id=a1.id, user=r1, answers=answers(project))
    assert assignment_next(project=project, user=r1) is None  # never the same pair twice


def test_most_useful_first_started_pairs_then_unknown_answers(project, member):
    project.overlap = 2
    project.save()
    known = make_pair(project=project, known_preference="A")
    unknown = make_pair(project=project)
    started = make_pair(project=project, known_preference="A")
    r1, r2, r3 = member("r1"), member("r2"), member("r3")
    Assignment.objects.create(
        project=project,
        pair=started,
        rater=r3,
        token="00000000-0000-0000-0000-000000000001",
        reserved_at=timezone.now(),
        reserved_until=timezone.now() + timedelta(minutes=5),
    )
    assert assignment_next(project=project, user=r1).pair == started  # now full (2 of 2)
    assert assignment_next(project=project, user=r2).pair == unknown  # no known answer first
    r4, r5 = member("r4"), member("r5")
    assert assignment_next(project=project, user=r4).pair == unknown  # started beats fresh
    assert assignment_next(project=project, user=r5).pair == known


def test_expired_reservation_is_reclaimed(project, member):
    make_pair(project=project)
    r1, r2 = member("r1"), member("r2")
    a1 = assignment_next(project=project, user=r1)
    assert assignment_next(project=project, user=r2) is None
    Assignment.objects.filter(pk=a1.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    a2 = assignment_next(project=project, user=r2)
    assert a2 is not None and a2.pair_id == a1.pair_id
    # The late rater's submit is refused rather than pushing the pair past overlap 1.
    with pytest.raises(ApplicationError) as exc:
        assignment_submit(assignment_id=a1.id, user=r1, answers=answers(project))
    assert exc.value.status_code == 409
    assert Judgement.objects.count() == 0


def test_skip_frees_the_slot_and_policy_decides_if_it_comes_back(project, member):
    make_pair(project=project)
    r1, r2 = member("r1"), member("r2")
    a1 = assignment_next(project=project, user=r1)
    assignment_skip(assignment_id=a1.id, user=r1)
    assert assignment_next(project=project, user=r1) is None  # default: others only
    QueuePolicy.objects.create(project=project, skip_policy="later")
    again = assignment_next(project=project, user=r1)
    assert again.pk == a1.pk and again.status == "reserved"
    assignment_skip(assignment_id=again.id, user=r1)
    assert assignment_next(project=project, user=r2).pair_id == a1.pair_id


def test_submit_maps_shown_order_and_is_idempotent(project, member):
    pair = make_pair(project=project)
    r1 = member("r1")
    a = assignment_next(project=project, user=r1)
    Assignment.objects.filter(pk=a.pk).update(shown_order="BA")
    _, created = assignment_submit(assignment_id=a.id, user=r1, answers=answers(project, "A"))
    assert created
    rows = Judgement.objects.filter(pair=pair)
    assert rows.count() == project.facets.count()
    # The rater saw B on the left and chose the left one: stored as B, with the order.
    assert set(rows.values_list("choice", "shown_order")) == {("B", "BA")}
    assert all(j.seconds_spent is not None for j in rows)
    _, created = assignment_submit(assignment_id=a.id, user=r1, answers=answers(project, "B"))
    assert not created and rows.count() == project.facets.count()
    assert displayed_to_stored(choice="tie", shown_order="BA") == "tie"


def test_missing_facet_is_refused_and_nothing_is_stored(project, member):
    make_pair(project=project)
    r1 = member("r1")
    a = assignment_next(project=project, user=r1)
    partial = answers(project)
    partial.pop("fluent")
    with pytest.raises(ApplicationError, match="Fluent"):
        assignment_submit(assignment_id=a.id, user=r1, answers=partial)
    assert Judgement.objects.count() == 0
    assert Assignment.objects.get(pk=a.pk).status == "reserved"


def test_undo_within_reservation_only(project, member):
    make_pair(project=project)
    r1 = member("r1")
    a = assignment_next(project=project, user=r1)
    assignment_submit(assignment_id=a.id, user=r1, answers=answers(project))
    assignment_undo(assignment_id=a.id, user=r1)
    assert Judgement.objects.count() == 0
    assert assignment_next(project=project, user=r1).pk == a.pk
    assignment_submit(assignment_id=a.id, user=r1, answers=answers(project, "tie"))
    Assignment.objects.filter(pk=a.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApplicationError, match="can no longer be undone"):
        assignment_undo(assignment_id=a.id, user=r1)
    assert Judgement.objects.filter(choice="tie").count() == project.facets.count()


def test_other_raters_assignments_and_projects_are_not_found(project, member, make_user):
    from preferences.projects import project_create

    make_pair(project=project)
    r1, r2 = member("r1"), member("r2")
    a = assignment_next(project=project, user=r1)
    with pytest.raises(NotFound):
        assignment_submit(assignment_id=a.id, user=r2, answers=answers(project))
    other = project_create(name="Other")
    with pytest.raises(NotFound):
        assignment_next(project=other, user=r1)
