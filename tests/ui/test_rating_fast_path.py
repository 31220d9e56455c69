"""The rating fast path keeps its promises: consensus follows rating-screen submits (the pair
is marked pending in the submit's transaction and drained after commit, off the request),
Next finds a project's pairs behind other projects' older ones, and Next / Submit stay within
their query budget."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.models import Membership
from preferences.consensus.models import Consensus, ConsensusPolicy
from preferences.consensus.selectors import consensus_list
from preferences.consensus.services import consensus_refresh, consensus_update_for
from preferences.models import Assignment, CandidatePair, ConsensusPending, Facet, Judgement
from preferences.projects import project_create
from preferences.rating.queue import assignment_next

from .factories import all_facets, make_pair, rater_client

pytestmark = pytest.mark.django_db

# Next and Submit on the rating screen, session and user reads included (sessions are read from
# the database here; with CACHE_URL set they come from Redis). They were 20 and 12 before the
# fast path, 14 and 14 with it through the ORM; on PostgreSQL now: session, user, the rater's
# state, the reservation with its page (one statement); session, user, read, guarded write.
# Every few Nexts a process also moves its queue floor (one more statement; kept out of the
# measured Next below). SQLite runs the same statements of the rules one by one (17 and 14
# through its ORM fallback before): Next is session, user, state, the search's steps, the
# reservation, its row and the page, with the transaction's statements; Submit is session,
# user, read, and the guarded write's steps in a transaction. Raise these only on purpose.
NEXT_MAX_QUERIES = 4 if connection.vendor == "postgresql" else 11
SUBMIT_MAX_QUERIES = 4 if connection.vendor == "postgresql" else 8


def _next(client, project) -> int:
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    return int(re.search(r'action="/rate/items/(\d+)/submit/"', body).group(1))


def test_rating_screen_submit_updates_consensus_of_every_facet(
    project, member, django_capture_on_commit_callbacks
):
    project.overlap = 2
    project.save()
    pair = make_pair(project=project)
    r1, r2 = rater_client(project, member, "r1"), rater_client(project, member, "r2")
    facets = list(Facet.objects.filter(project=project, is_active=True))

    with django_capture_on_commit_callbacks() as callbacks:
        form = all_facets(project, "A")
        assert r1.post(f"/rate/items/{_next(r1, project)}/submit/", form).status_code == 302
    # Committed with the answers: the pair is pending, nothing was blended in the request, and
    # a refresh is asked for after commit.
    assert ConsensusPending.objects.filter(pair=pair, project=project).exists()
    assert not Consensus.objects.filter(pair=pair).exists()
    assert len(callbacks) == 1
    consensus_refresh(project_id=project.id)  # what the refresh task queued on commit does
    rows = {c.facet_id: c for c in consensus_list(project=project)}
    assert not ConsensusPending.objects.filter(pair=pair).exists()
    assert set(rows) == {f.id for f in facets}
    stored = dict(Judgement.objects.filter(pair=pair).values_list("facet_id", "choice"))
    # One vote per facet: the consensus is that vote (as stored, whatever order was shown).
    assert all(c.n_judgements == 1 and c.label == stored[f] for f, c in rows.items())

    form = all_facets(project, "B")
    assert r2.post(f"/rate/items/{_next(r2, project)}/submit/", form).status_code == 302
    assert consensus_refresh(project_id=project.id) == 1
    rows = {c.facet_id: c for c in Consensus.objects.filter(pair=pair)}
    assert all(c.n_judgements == 2 for c in rows.values())
    for facet in facets:
        # The batch rebuild stores exactly what the one-item rebuild computes.
        expected = consensus_update_for(pair=pair, facet=facet)
        got = rows[facet.id]
        assert (got.label, got.counts, got.scores) == (
            expected.label,
            expected.counts,
            expected.scores,
        )
        assert got.confidence == pytest.approx(expected.confidence)


def test_undo_after_a_rating_screen_submit_removes_its_consensus(project, member):
    pair = make_pair(project=project)
    client = rater_client(project, member, "r1")
    aid = _next(client, project)
    client.post(f"/rate/items/{aid}/submit/", all_facets(project))
    consensus_refresh(project_id=project.id)
    assert Consensus.objects.filter(pair=pair).count() == project.facets.count()
    assert client.post(f"/rate/items/{aid}/undo/").status_code == 302
    assert not Judgement.objects.filter(pair=pair).exists()
    # The undo marked its pair; the refresh its commit queued (run here, as on the PostgreSQL
    # pass the task goes to the broker) removes the consensus of answers that are gone.
    assert ConsensusPending.objects.filter(pair=pair).exists()
    consensus_refresh(project_id=project.id)
    assert not Consensus.objects.filter(pair=pair).exists()


def test_next_reaches_a_project_whose_pairs_come_after_other_projects(project, member):
    older = project_create(name="older", overlap=1)
    for _ in range(3):
        make_pair(project=older)
    newer = project_create(name="newer", overlap=1)
    rater = member("r1")
    Membership.objects.create(project=newer, user=rater, role="annotator")
    first = make_pair(project=newer)
    got = assignment_next(project=newer, user=rater)
    assert got.pair == first and got.pair.post.project_id == newer.id
    # The project's first pair is remembered; pairs added later, and the first one being
    # deleted, still leave every open pair reachable.
    Assignment.objects.filter(pk=got.pk).delete()
    CandidatePair.objects.filter(pk=first.pk).delete()
    later = make_pair(project=newer)
    assert assignment_next(project=newer, user=rater).pair == later
    r2 = member("r2")
    Membership.objects.create(project=older, user=r2, role="annotator")
    assert assignment_next(project=older, user=r2).pair.post.project_id == older.id


def test_next_and_submit_stay_within_their_query_budget(project, member, monkeypatch):
    from preferences.rating import floor as queue_floor

    monkeypatch.setattr(queue_floor, "_FLOOR_ADVANCE_EVERY", 4096)
    # No gold draw: at the default rate one Next in twenty looks for gold pairs (one more
    # query), which made this test fail at random.
    ConsensusPolicy.objects.update_or_create(project=project, defaults={"gold_rate": 0})
    for _ in range(2):
        make_pair(project=project)
    client = rater_client(project, member, "r1")
    _next(client, project)  # warm: the project's first pair id is remembered per process
    client.post(f"/rate/items/{_next(client, project)}/submit/", all_facets(project))
    with CaptureQueriesContext(connection) as next_queries:
        aid = _next(client, project)
    form = all_facets(project)
    with CaptureQueriesContext(connection) as submit_queries:
        assert client.post(f"/rate/items/{aid}/submit/", form).status_code == 302
    assert len(next_queries) <= NEXT_MAX_QUERIES, [q["sql"][:80] for q in next_queries]
    assert len(submit_queries) <= SUBMIT_MAX_QUERIES, [q["sql"][:80] for q in submit_queries]
