"""Blind-first holds in the API too: an annotator cannot read the LLM's verdict on their own
open item through the pair consensus endpoint; after submitting, or as a reviewer, they can."""

import pytest
from django.test import Client

from preferences.consensus.models import ConsensusPolicy
from preferences.consensus.services import consensus_refresh
from preferences.marks import pairs_mark_changed
from preferences.models import Judgement, LLMLabeler
from preferences.rating.queue import assignment_next, assignment_submit

pytestmark = pytest.mark.django_db


def _consensus(client, project, pair):
    response = client.get(f"/api/projects/{project.pk}/pairs/{pair.pk}/consensus/")
    assert response.status_code == 200
    return response.json()


def test_the_consensus_api_hides_llm_verdicts_on_an_annotators_open_item(project, pair, member):
    policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
    policy.blind_first, policy.gold_rate = True, 0.0
    policy.save()
    llm = LLMLabeler.objects.create(model_id="gemini-test", prompt_version="v1")
    overall = project.facets.get(key="overall")
    # As a labeler writes: the judgement and its pair's mark, then the refresh the commit queues.
    Judgement.objects.create(pair=pair, facet=overall, kind="llm", rater_llm=llm, choice="B")
    pairs_mark_changed(project_id=project.pk, pair_ids=[pair.pk])
    consensus_refresh(project_id=project.pk)
    annotator, reviewer = member("ann"), member("rev", role="reviewer")
    client = Client()
    client.force_login(annotator)
    assignment = assignment_next(project=project, user=annotator)
    assert assignment.pair_id == pair.pk  # their own open item

    assert _consensus(client, project, pair) == []  # the LLM's B is not shown

    boss = Client()
    boss.force_login(reviewer)
    (label,) = _consensus(boss, project, pair)
    assert (label["facet"], label["label"]) == ("overall", "B")

    assignment_submit(
        assignment_id=assignment.pk,
        user=annotator,
        answers={f.key: "A" for f in project.facets.all()},
    )
    consensus_refresh(project_id=project.pk)  # what the task queued on commit does
    labels = {row["facet"]: row for row in _consensus(client, project, pair)}
    assert labels["overall"]["votes"] == 2  # their A and the LLM's B, now visible


def test_a_blended_label_with_the_llms_vote_is_hidden_even_beside_human_votes(
    project, pair, member
):
    """Another rater's A and the LLM's B blend into one label: it carries the LLM's verdict,
    so the annotator whose open item it is sees no label for that facet until they submit."""
    policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
    policy.blind_first, policy.gold_rate = True, 0.0
    policy.save()
    llm = LLMLabeler.objects.create(model_id="gemini-test", prompt_version="v1")
    overall = project.facets.get(key="overall")
    other, annotator = member("other"), member("ann")
    Judgement.objects.create(pair=pair, facet=overall, kind="human", rater_user=other, choice="A")
    Judgement.objects.create(pair=pair, facet=overall, kind="llm", rater_llm=llm, choice="B")
    pairs_mark_changed(project_id=project.pk, pair_ids=[pair.pk])
    consensus_refresh(project_id=project.pk)
    client = Client()
    client.force_login(annotator)
    assert assignment_next(project=project, user=annotator).pair_id == pair.pk
    assert "overall" not in {row["facet"] for row in _consensus(client, project, pair)}
