"""Submit's paths on both databases: the guarded write within a live reservation, the locked
path after it ran out, and a consensus refresh that fails leaving its pairs pending."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from preferences.consensus.models import Consensus
from preferences.consensus.services import consensus_refresh
from preferences.models import Assignment, AssignmentStatus, ConsensusPending, Judgement
from preferences.rating.queue import assignment_next, assignment_submit

from .factories import all_facets, facet_answers, make_pair, rater_client

pytestmark = pytest.mark.django_db


def test_guarded_submit_falls_back_when_the_reservation_ran_out(project, member):
    project.overlap = 1
    project.save()
    pair = make_pair(project=project)
    r1, r2 = member("r1"), member("r2")
    a1 = assignment_next(project=project, user=r1)
    past = timezone.now() - timedelta(seconds=1)
    Assignment.objects.filter(pk=a1.pk).update(reserved_until=past)
    # Nobody took the slot: the locked path stores the late answers.
    assignment, created = assignment_submit(
        assignment_id=a1.pk, user=r1, answers=facet_answers(project)
    )
    assert created and assignment.status == AssignmentStatus.DONE
    assert Judgement.objects.filter(pair=pair, rater_user=r1).count() == project.facets.count()
    # Taken by someone else meanwhile: refused, nothing stored.
    other = make_pair(project=project)
    a2 = assignment_next(project=project, user=r1)
    assert a2.pair_id == other.id
    Assignment.objects.filter(pk=a2.pk).update(reserved_until=past)
    assert assignment_next(project=project, user=r2).pair_id == other.id
    with pytest.raises(Exception, match="ran out and other raters took it"):
        assignment_submit(assignment_id=a2.pk, user=r1, answers=facet_answers(project))
    assert not Judgement.objects.filter(pair=other, rater_user=r1).exists()


def test_a_failed_drain_leaves_its_pairs_pending(project, member, monkeypatch):
    from preferences.consensus import services

    pair = make_pair(project=project)
    client = rater_client(project, member, "r1")
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    aid = re.search(r"/rate/items/(\d+)/submit/", body).group(1)
    assert client.post(f"/rate/items/{aid}/submit/", all_facets(project)).status_code == 302

    def broken(*args, **kwargs):
        raise RuntimeError("blending failed")

    monkeypatch.setattr(services, "_rebuild_pairs", broken)
    with pytest.raises(RuntimeError):
        consensus_refresh(project_id=project.id)
    assert ConsensusPending.objects.filter(pair=pair).exists()  # rolled back: not lost
    monkeypatch.undo()
    other = make_pair(project=project)
    assert consensus_refresh(project_id=project.id) == 1  # the pending pair only
    assert not Consensus.objects.filter(pair=other).exists()  # not pending: not rebuilt
    assert Consensus.objects.filter(pair=pair).count() == project.facets.count()
    assert not ConsensusPending.objects.exists()


def test_the_guarded_write_stores_nothing_once_the_reservation_is_no_longer_live(project, member):
    """Submit read the reservation as live; by the time it writes, the reservation ran out (or
    was skipped): the guarded write (rules.SUBMIT_DONE) changes nothing, and Submit then takes
    the locked path, which decides by the overlap."""
    from preferences.rating import queue

    make_pair(project=project)
    rater = member("r1")
    reserved = assignment_next(project=project, user=rater)
    item = queue._submit_read(assignment_id=reserved.pk, user=rater, lock=False)
    now = timezone.now()
    new = queue._submit_plan(
        item=item, user=rater, answers=facet_answers(project), rationale="", now=now
    )
    assert new
    Assignment.objects.filter(pk=reserved.pk).update(status=AssignmentStatus.SKIPPED)
    assert queue._submit_write(item=item, new=new, now=now, guard=True) is False
    assert not Judgement.objects.filter(rater_user=rater).exists()
    assert Assignment.objects.get(pk=reserved.pk).status == AssignmentStatus.SKIPPED
    Assignment.objects.filter(pk=reserved.pk).update(status=AssignmentStatus.RESERVED)
    assert queue._submit_write(item=item, new=new, now=now, guard=True) is True
    assert Judgement.objects.filter(rater_user=rater).count() == len(new)
    assert ConsensusPending.objects.filter(pair_id=reserved.pair_id).exists()
