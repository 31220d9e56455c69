"""Blending: the incremental update on every judgement, weights, adjudication, tie vs
both-bad, position flips, Dawid–Skene with refitted reliabilities, and undo."""

import pytest

from preferences.consensus.models import Consensus, RaterReliability
from preferences.consensus.services import consensus_policy_update, reliability_fit

pytestmark = pytest.mark.django_db


def _consensus(pair, facet):
    return Consensus.objects.get(pair=pair, facet=facet)


def test_a_human_vote_outweighs_the_llm_and_updates_incrementally(
    pair, overall, member, llm, judge
):
    ann = member("ann")
    judge(pair, overall, llm, "B")
    c = _consensus(pair, overall)
    assert (c.label, c.method, c.n_judgements) == ("B", "weighted", 1)
    judge(pair, overall, ann, "A")
    c = _consensus(pair, overall)
    assert c.label == "A" and c.scores == {"A": 1.0, "B": 0.5}
    assert c.counts == {"human": {"A": 1}, "llm": {"B": 1}}
    assert c.weights["human"] == 1.0 and c.weights["llm"] == 0.5
    assert c.human_agreement == 1.0
    # One human against the LLM: A wins the vote but is far from certain, so it is flagged.
    assert 0.5 < c.confidence < 0.6 and c.flagged
    judge(pair, overall, member("bob"), "A")
    c = _consensus(pair, overall)
    assert c.label == "A" and c.confidence > 0.9 and not c.flagged
    # Other facets of the pair are untouched: the update is per item, not a recompute.
    assert Consensus.objects.filter(pair=pair).count() == 1


def test_adjudication_wins_and_is_not_flagged(pair, overall, member, judge):
    judge(pair, overall, member("ann"), "A")
    judge(pair, overall, member("bob"), "B")
    c = _consensus(pair, overall)
    assert c.label == "tie" and c.flagged  # a dead heat between A and B is a tie, for review
    judge(pair, overall, member("rev", role="reviewer"), "B", kind="adjudication")
    c = _consensus(pair, overall)
    assert (c.label, c.method, c.confidence, c.flagged) == ("B", "adjudication", 1.0, False)


def test_tie_and_both_bad_stay_distinct(pair, overall, member, judge):
    judge(pair, overall, member("ann"), "both-bad")
    judge(pair, overall, member("bob"), "both-bad")
    judge(pair, overall, member("cy"), "tie")
    c = _consensus(pair, overall)
    assert c.label == "both-bad" and c.scores == {"both-bad": 2.0, "tie": 1.0}


def test_a_flipped_llm_verdict_counts_half(pair, overall, member, llm, judge, project):
    consensus_policy_update(project=project, weight_llm=1.0)
    judge(pair, overall, llm, "tie", flipped=True)
    judge(pair, overall, member("ann"), "A")
    c = _consensus(pair, overall)
    assert c.scores == {"A": 1.0, "tie": 0.5} and c.label == "A"


def test_a_lone_flipped_llm_tie_is_low_confidence(pair, overall, llm, judge):
    judge(pair, overall, llm, "tie", flipped=True)
    c = _consensus(pair, overall)
    assert c.label == "tie" and c.confidence < 0.5 and c.flagged


def test_undo_updates_the_consensus(pair, overall, member, judge):
    from preferences.consensus.services import consensus_refresh
    from preferences.marks import pairs_mark_changed

    j = judge(pair, overall, member("ann"), "A")
    j.delete()  # an undo deletes the answer and marks its pair
    pairs_mark_changed(project_id=overall.project_id, pair_ids=[pair.pk])
    consensus_refresh(project_id=overall.project_id)
    assert not Consensus.objects.filter(pair=pair, facet=overall).exists()


def test_policy_weights_are_validated(project):
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="between 0 and 100"):
        consensus_policy_update(project=project, weight_human=-1)
    with pytest.raises(ApplicationError, match="gold rate"):
        consensus_policy_update(project=project, gold_rate=0.9)
    with pytest.raises(ApplicationError, match="method"):
        consensus_policy_update(project=project, method="adjudication")


def _post_pair(project, i):
    from annotate.models import AltText, Image, Post
    from preferences.models import CandidatePair

    image = Image.objects.create(
        sha256=f"{i:064x}",
        file=f"images/{i}.png",
        mime="image/png",
        width=1,
        height=1,
        size_bytes=1,
    )
    post = Post.objects.create(
        project=project, platform="twitter", content_key=f"p{i}", context="c", image=image
    )
    a = AltText.objects.create(
        post=post, text=f"a{i}", text_sha256=f"a{i}", origin="imported-chosen"
    )
    b = AltText.objects.create(
        post=post, text=f"b{i}", text_sha256=f"b{i}", origin="imported-rejected"
    )
    return CandidatePair.objects.create(post=post, alt_a=a, alt_b=b, source="import")


def test_dawid_skene_learns_that_a_rater_is_unreliable(project, overall, member, llm, judge):
    good = [member("g1"), member("g2")]
    bad = member("contrarian")
    pairs = [_post_pair(project, i) for i in range(12)]
    for i, pair in enumerate(pairs):
        truth = "A" if i % 2 else "B"
        for rater in good:
            judge(pair, overall, rater, truth)
        judge(pair, overall, bad, "B" if truth == "A" else "A")
        judge(pair, overall, llm, truth)
    consensus_policy_update(project=project, method="dawid-skene")
    result = reliability_fit(project=project)
    assert result["raters"] == 4
    rel = {
        r.rater_user.username if r.rater_user else "llm": r for r in RaterReliability.objects.all()
    }
    assert rel["contrarian"].ds_accuracy < 0.4 < 0.7 < rel["g1"].ds_accuracy
    assert rel["llm"].ds_accuracy > 0.7

    # A new item: the contrarian and the LLM disagree; the fitted reliabilities decide, in the
    # incremental update (no refit).
    fresh = _post_pair(project, 99)
    judge(fresh, overall, bad, "A")
    judge(fresh, overall, llm, "B")
    c = _consensus(fresh, overall)
    assert (c.method, c.label) == ("dawid-skene", "B") and c.confidence > 0.6
