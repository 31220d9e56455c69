"""Gold items (creation, accuracy, down-weighting, queue selector), blind-first, and the
agreement numbers on the dashboard and the API."""

import random

import pytest
from django.urls import reverse

from annotate.models import AltText, Image, Post
from preferences.consensus.models import Consensus, GoldItem, RaterReliability
from preferences.consensus.selectors import (
    agreement_by_facet,
    consensus_flagged_for_review,
    gold_pair_for_rater,
    llm_verdicts_visible,
)
from preferences.consensus.services import consensus_policy_update, gold_items_create
from preferences.models import CandidatePair

pytestmark = pytest.mark.django_db


@pytest.fixture
def posts(project):
    out = []
    for i in range(8):
        image = Image.objects.create(
            sha256=f"{i + 1:064x}", file=f"images/photo_{i}.jpg", mime="image/jpeg",
            width=1, height=1, size_bytes=1,
        )  # fmt: skip
        post = Post.objects.create(
            project=project, platform="twitter", content_key=f"g{i}",
            context=f"Look at my cat number {i} today!", image=image,
        )  # fmt: skip
        AltText.objects.create(
            post=post, text=f"A grey cat number {i} asleep on a red sofa",
            text_sha256=f"good{i}", origin="user-written",
        )  # fmt: skip
        out.append(post)
    return out


def test_gold_items_cover_the_four_kinds_and_know_the_answer(project, posts):
    created = gold_items_create(project=project, limit=8, seed=1)
    assert len(created) == 8
    assert {g.kind for g in created} == {"other-post", "filename", "boilerplate", "post-text"}
    sides = set()
    for gold in created:
        pair = gold.pair
        assert pair.source == "gold" and pair.known_preference in ("A", "B")
        good = pair.alt_a if pair.known_preference == "A" else pair.alt_b
        bad = pair.alt_b if pair.known_preference == "A" else pair.alt_a
        assert good.text.startswith("A grey cat") and good.post == bad.post == pair.post
        assert bad.text != good.text
        if gold.kind == "filename":
            assert bad.text == f"photo_{posts.index(pair.post)}.jpg"
        if gold.kind == "post-text":
            assert bad.text == pair.post.context
        if gold.kind == "other-post":
            assert bad.text.startswith("A grey cat") and bad.text != good.text
        if gold.kind == "boilerplate":
            assert "image" in bad.text.lower()
        assert gold.facet_keys == ["overall", "faithful"]
        sides.add(pair.known_preference)
    assert sides == {"A", "B"}  # position says nothing about the answer
    # Running it again adds nothing for posts that already have a gold pair.
    assert gold_items_create(project=project, limit=8) == []


def test_gold_items_need_good_alt_texts_and_a_sane_limit(project):
    from core.errors import ApplicationError

    assert gold_items_create(project=project, limit=5) == []
    with pytest.raises(ApplicationError):
        gold_items_create(project=project, limit=0)


def test_gold_accuracy_is_tracked_and_down_weights_a_careless_rater(project, posts, member, judge):
    consensus_policy_update(project=project, gold_min_answers=3)
    golds = gold_items_create(project=project, limit=4, seed=3)
    overall = project.facets.get(key="overall")
    careful, careless = member("careful"), member("careless")
    for gold in golds:
        right = gold.pair.known_preference
        judge(gold.pair, overall, careful, right)
        judge(gold.pair, overall, careless, "B" if right == "A" else "A")
    rel = {r.rater_user.username: r for r in RaterReliability.objects.all()}
    assert (rel["careful"].gold_answers, rel["careful"].gold_accuracy) == (4, 1.0)
    assert (rel["careless"].gold_answers, rel["careless"].gold_accuracy) == (4, 0.0)

    # On a normal pair the careless rater's vote now weighs little against the careful one.
    post = posts[-1]
    a = AltText.objects.create(post=post, text="x", text_sha256="x", origin="imported-chosen")
    b = AltText.objects.create(post=post, text="y", text_sha256="y", origin="imported-rejected")
    pair = CandidatePair.objects.create(post=post, alt_a=a, alt_b=b, source="import")
    judge(pair, overall, careless, "A")
    judge(pair, overall, careful, "B")
    c = Consensus.objects.get(pair=pair, facet=overall)
    assert c.label == "B" and c.scores == {"A": 0.1, "B": 1.0}


def test_gold_pair_for_rater_follows_the_rate_and_skips_seen_pairs(project, posts, member, judge):
    golds = gold_items_create(project=project, limit=2)
    ann = member("ann")
    consensus_policy_update(project=project, gold_rate=0)
    assert gold_pair_for_rater(project=project, user=ann, rng=random.Random(0)) is None
    consensus_policy_update(project=project, gold_rate=0.5)
    rng = random.Random(42)
    draws = [gold_pair_for_rater(project=project, user=ann, rng=rng) for _ in range(200)]
    served = [d for d in draws if d is not None]
    assert 70 < len(served) < 130  # about half
    assert {d.pk for d in served} == {g.pair_id for g in golds}
    overall = project.facets.get(key="overall")
    for gold in golds:
        judge(gold.pair, overall, ann, gold.pair.known_preference)
    assert not any(gold_pair_for_rater(project=project, user=ann, rng=rng) for _ in range(20))


def test_blind_first_hides_llm_verdicts_until_the_rater_answered(pair, member, project, judge):
    ann = member("ann")
    assert llm_verdicts_visible(project=project, user=ann, pair=pair) is False
    judge(pair, project.facets.get(key="overall"), ann, "A")
    assert llm_verdicts_visible(project=project, user=ann, pair=pair) is True
    consensus_policy_update(project=project, blind_first=False)
    assert llm_verdicts_visible(project=project, user=member("bob"), pair=pair) is True


def test_agreement_numbers_dashboard_and_api(project, posts, member, llm, judge, client):
    overall = project.facets.get(key="overall")
    raters = [member("r1"), member("r2"), member("r3")]
    pairs = []
    for i, post in enumerate(posts[:4]):
        a = AltText.objects.create(
            post=post, text="p", text_sha256=f"p{i}", origin="imported-chosen"
        )
        b = AltText.objects.create(
            post=post, text="q", text_sha256=f"q{i}", origin="imported-rejected"
        )
        pairs.append(CandidatePair.objects.create(post=post, alt_a=a, alt_b=b, source="import"))
    human = [["A", "A", "A"], ["B", "B", "A"], ["tie", "tie", "tie"], ["A", "B", "both-bad"]]
    llm_labels = ["A", "A", "tie", "tie"]  # item 4: every label differs -> flagged
    for pair, labels, llm_label in zip(pairs, human, llm_labels, strict=True):
        for rater, label in zip(raters, labels, strict=True):
            judge(pair, overall, rater, label)
        judge(pair, overall, llm, llm_label)

    row = next(r for r in agreement_by_facet(project=project) if r["facet"] == overall)
    # Pairwise: 3 + 1 + 3 + 0 agreeing pairs of 12.
    assert row["percent"] == pytest.approx(round(100 * 7 / 12, 1))
    import krippendorff
    import numpy as np

    codes = {"A": 0, "B": 1, "tie": 2, "both-bad": 3}
    matrix = np.array([[codes[u[r]] for u in human] for r in range(3)], dtype=float)
    assert row["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"), abs=1e-3
    )
    # κ: LLM vs human majority on items that have one (A, B, tie): (A,A) (A,B) (tie,tie).
    # p_o = 2/3; LLM A 2, tie 1; humans A 1, B 1, tie 1; p_e = (2·1 + 1·1)/9 = 1/3; κ = 0.5.
    assert row["kappa"] == pytest.approx(0.5) and row["kappa_items"] == 3
    assert row["flagged"] >= 1
    flagged = consensus_flagged_for_review(project=project)
    assert pairs[3].pk in [f["pair_id"] for f in flagged]

    admin = member("boss", role="admin")
    client.force_login(admin)
    page = client.get(reverse("consensus:dashboard", args=[project.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Krippendorff" in html and str(row["alpha"]) in html and "0.5" in html
    assert "r1" in html and "gemini-2.5-flash" in html
    api = client.get(reverse("consensus:api-agreement", args=[project.pk])).json()
    facet = next(f for f in api["facets"] if f["facet"] == "overall")
    assert facet["kappa"] == pytest.approx(0.5) and facet["alpha"] == row["alpha"]
    assert {r["name"] for r in api["raters"]} >= {"r1", "r2", "r3"}
    listed = client.get(reverse("consensus:api-consensus", args=[project.pk]), {"flagged": "true"})
    assert listed.status_code == 200 and listed.json()["count"] == row["flagged"]

    client.force_login(raters[0])
    assert client.get(reverse("consensus:dashboard", args=[project.pk])).status_code == 403
    assert client.get(reverse("consensus:api-agreement", args=[project.pk])).status_code == 403


def test_dashboard_forms_save_settings_and_make_gold(project, posts, member, client):
    client.force_login(member("boss", role="admin"))
    url = reverse("consensus:policy", args=[project.pk])
    form = {
        "method": "dawid-skene", "weight_adjudication": "4", "weight_human": "1",
        "weight_llm": "0.25", "review_threshold": "0.7", "gold_rate": "0.1",
        "gold_min_answers": "5", "blind_first": "on",
    }  # fmt: skip
    assert client.post(url, form).status_code == 302
    project.consensus_policy.refresh_from_db()
    assert (
        project.consensus_policy.weight_llm == 0.25 and not project.consensus_policy.gold_downweight
    )
    bad = client.post(url, dict(form, weight_llm="lots"), follow=True)
    assert "must be a number" in bad.content.decode()
    project.consensus_policy.refresh_from_db()
    assert project.consensus_policy.weight_llm == 0.25  # nothing lost
    made = client.post(reverse("consensus:gold", args=[project.pk]), {"count": "3"}, follow=True)
    assert "3 gold items created" in made.content.decode()
    assert GoldItem.objects.count() == 3
