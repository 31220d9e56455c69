"""The queue serves gold pairs at the project's rate, and LLM verdicts stay hidden until allowed."""

import random

import pytest
from django.urls import reverse

from preferences.consensus import selectors
from preferences.consensus.models import ConsensusPolicy
from preferences.models import CandidatePair, Judgement, LLMLabeler
from preferences.rating.queue import assignment_next, assignment_submit

pytestmark = pytest.mark.django_db


def _gold_pair(pair):
    from annotate.models import AltText

    bad = AltText.objects.create(
        post=pair.post, text="image of IMG_0001.jpg", text_sha256="g", origin="imported-rejected"
    )
    return CandidatePair.objects.create(
        post=pair.post, alt_a=pair.alt_a, alt_b=bad, source="gold", known_preference="A"
    )


def _policy(project, **fields):
    policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
    for k, v in fields.items():
        setattr(policy, k, v)
    policy.save()


class _AlwaysDraw(random.Random):
    """A random source whose draw is always below the gold rate."""

    def random(self):
        return 0.0


def test_gold_pairs_come_only_through_the_gold_draw(project, pair, member, monkeypatch):
    gold = _gold_pair(pair)
    rater = member("ann")
    _policy(project, gold_rate=0.0)
    first = assignment_next(project=project, user=rater)
    assert first.pair_id == pair.pk  # gold is never picked by the normal selection
    assignment_submit(
        assignment_id=first.pk, user=rater, answers={f.key: "A" for f in project.facets.all()}
    )
    assert assignment_next(project=project, user=rater) is None
    _policy(project, gold_rate=0.05)
    monkeypatch.setattr(selectors, "random", _AlwaysDraw())
    served = assignment_next(project=project, user=rater)
    assert served is not None and served.pair_id == gold.pk


def test_blind_first_hides_llm_verdicts_until_allowed(client, project, pair, member):
    rater = member("ann")
    llm = LLMLabeler.objects.create(model_id="gemini-test", prompt_version="v1")
    overall = project.facets.get(key="overall")
    Judgement.objects.create(pair=pair, facet=overall, kind="llm", rater_llm=llm, choice="B")
    client.force_login(rater)
    _policy(project, blind_first=True, gold_rate=0.0)
    client.get(reverse("rate:home", args=[project.id]))  # guidelines seen
    page = client.get(reverse("rate:next", args=[project.id])).content.decode()
    assert "Compare two alt-texts" in page and "LLM:" not in page
    assignment = assignment_next(project=project, user=rater)
    assignment_submit(
        assignment_id=assignment.pk, user=rater, answers={f.key: "A" for f in project.facets.all()}
    )
    assert not Judgement.objects.filter(rater_user=rater, llm_verdict_visible=True).exists()


def test_without_blind_first_verdicts_show_and_are_recorded_as_seen(client, project, pair, member):
    rater = member("ann")
    llm = LLMLabeler.objects.create(model_id="gemini-test", prompt_version="v1")
    overall = project.facets.get(key="overall")
    Judgement.objects.create(pair=pair, facet=overall, kind="llm", rater_llm=llm, choice="B")
    _policy(project, blind_first=False, gold_rate=0.0)
    client.force_login(rater)
    client.get(reverse("rate:home", args=[project.id]))  # guidelines seen
    page = client.get(reverse("rate:next", args=[project.id])).content.decode()
    assert "LLM:" in page
    assignment = assignment_next(project=project, user=rater)
    shown_b = "A" if assignment.shown_order == "BA" else "B"  # the LLM's B, as displayed
    assert f"LLM: {shown_b} × 1" in page
    assignment_submit(
        assignment_id=assignment.pk, user=rater, answers={f.key: "A" for f in project.facets.all()}
    )
    assert (
        Judgement.objects.filter(rater_user=rater, kind="human").count() == project.facets.count()
    )
    assert not Judgement.objects.filter(
        rater_user=rater, kind="human", llm_verdict_visible=False
    ).exists()
