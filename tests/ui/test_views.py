"""Rater pages through the Django client: judge, correct, review, dashboard, security."""

import re

import pytest
from django.test import Client

from annotate.models import AltText
from preferences.models import Assignment, CandidatePair, CorrectionReview, Judgement

from .factories import all_facets, make_alt, make_pair, make_post

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script> &amp; 🐱 <b>bold</b>'


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def next_item(client, project) -> tuple[int, str]:
    client.get(f"/projects/{project.id}/rate/")  # guidelines first
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    return int(re.search(r"/rate/items/(\d+)/submit/", body).group(1)), body


def test_guidelines_come_before_the_first_item_and_render_safely(project, member):
    project.guidelines = (
        "# Rules\n\nBe **brief**. <script>alert(1)</script> [x](javascript:alert(1))"
    )
    project.save()
    make_pair(project=project)
    client = login(member("r1"))
    response = client.get(f"/projects/{project.id}/rate/next/")
    assert response.status_code == 302 and response["Location"].endswith("/rate/")
    body = client.get(f"/projects/{project.id}/rate/").content.decode()
    assert "<h1>Rules</h1>" in body and "<strong>brief</strong>" in body
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    assert 'href="javascript:' not in body
    assert client.get(f"/projects/{project.id}/rate/next/").status_code == 200


def test_judge_page_submit_redirects_to_next_and_announces(project, member):
    make_pair(project=project)
    make_pair(project=project)
    client = login(member("r1"))
    aid, body = next_item(client, project)
    for label in ["A is better", "B is better", "Tie", "Both bad", "Rationale (optional)"]:
        assert label in body
    assert 'role="status" aria-live="polite"' in body
    response = client.post(
        f"/rate/items/{aid}/submit/", {**all_facets(project, "tie"), "rationale": "same"}
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Saved your answers" in page and 'id="undo-form"' in page
    assert (
        Judgement.objects.filter(choice="tie", rationale="same").count() == project.facets.count()
    )


def test_invalid_submit_keeps_the_answers_and_says_what_is_missing(project, member):
    make_pair(project=project)
    client = login(member("r1"))
    aid, _ = next_item(client, project)
    response = client.post(
        f"/rate/items/{aid}/submit/", {"facet-overall": "B", "rationale": "keep me"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in body and "missing: Faithful to the image" in body
    assert 'value="B" data-key="2" checked' in body and "keep me" in body
    assert Judgement.objects.count() == 0


def test_skip_and_undo_through_pages(project, member):
    make_pair(project=project)
    make_pair(project=project)
    client = login(member("r1"))
    aid, _ = next_item(client, project)
    client.post(f"/rate/items/{aid}/skip/")
    assert Assignment.objects.get(pk=aid).status == "skipped"
    aid2, _ = next_item(client, project)
    assert aid2 != aid
    client.post(f"/rate/items/{aid2}/submit/", all_facets(project))
    response = client.post(f"/rate/items/{aid2}/undo/")
    assert response["Location"] == f"/rate/items/{aid2}/?done=undone"
    assert Judgement.objects.count() == 0
    assert client.get(response["Location"]).status_code == 200


def test_hear_it_line_and_random_order_are_on_the_page(project, member):
    pair = make_pair(project=project, context="Look at this!", a="Alpha text", b="Beta text")
    client = login(member("r1"))
    aid, body = next_item(client, project)
    assert "Hear A as a screen reader would" in body
    assignment = Assignment.objects.get(pk=aid)
    left = pair.alt_a if assignment.shown_order == "AB" else pair.alt_b
    assert f'<p class="alt-text" id="alt-A">{left.text}</p>' in body
    assert f"Look at this! Image, {left.text}" in body


def test_post_and_alt_text_with_markup_render_as_text(project, member):
    make_pair(project=project, context=XSS, a=XSS + " a", b="plain")
    client = login(member("r1"))
    _, body = next_item(client, project)
    assert "<script>alert" not in body and "<b>bold</b>" not in body
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;amp; 🐱 &lt;b&gt;bold&lt;/b&gt;"
        in body
    )


def test_correction_edit_stores_child_and_pair_unchanged_stores_nothing(project, member):
    post = make_post(project=project, context="Bake sale logo!")
    original = make_alt(post=post, text="image of a circle")
    other = make_alt(post=post, text="IMG_1.jpg")
    client = login(member("r1"))
    body = client.get(f"/projects/{project.id}/correct/").content.decode()
    assert "image of a circle" in body and 'data-check="opener"' in body
    response = client.post(
        f"/projects/{project.id}/correct/{original.id}/submit/",
        {"action": "edit", "text": "  image   of a circle "},
    )
    assert response.status_code == 302
    assert AltText.objects.count() == 2 and CandidatePair.objects.count() == 0
    assert CorrectionReview.objects.get(alt_text=original).decision == "unchanged"
    client.post(
        f"/projects/{project.id}/correct/{other.id}/submit/",
        {"action": "edit", "text": "A red circle logo"},
    )
    edited = AltText.objects.get(origin="human-corrected")
    assert edited.parent == other and edited.text == "A red circle logo"
    pair = CandidatePair.objects.get()
    assert pair.source == "correction"
    preferred = pair.alt_a if pair.known_preference == "A" else pair.alt_b
    assert preferred == edited
    # A double-submitted edit stores nothing more.
    client.post(
        f"/projects/{project.id}/correct/{other.id}/submit/", {"action": "edit", "text": "Again"}
    )
    assert AltText.objects.filter(origin="human-corrected").count() == 1


def test_correction_live_check_and_bad_input(project, member):
    post = make_post(project=project, context="Sale now")
    alt = make_alt(post=post, text="a dog")
    client = login(member("r1"))
    body = client.post(
        f"/projects/{project.id}/correct/{alt.id}/check/",
        {"text": "A DOG AT WWW.SHOP.COM #SALE"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert body.strip().startswith('<div id="feedback"')
    for key in ["url", "hashtag", "caps"]:
        assert f'data-check="{key}"' in body
    assert "<del>" in body and "<ins>" in body
    response = client.post(
        f"/projects/{project.id}/correct/{alt.id}/submit/", {"action": "edit", "text": "   "}
    )
    assert response.status_code == 400 and "empty" in response.content.decode()
    response = client.post(f"/projects/{project.id}/correct/{alt.id}/submit/", {"action": "accept"})
    assert response.status_code == 400 and "no LLM suggestion" in response.content.decode()
    assert not CorrectionReview.objects.exists()


def test_llm_suggestion_is_shown_and_can_be_accepted(project, member):
    post = make_post(project=project)
    alt = make_alt(post=post, text="pic")
    suggestion = make_alt(
        post=post, text="A red square on white.", origin="llm-corrected", parent=alt
    )
    client = login(member("r1"))
    body = client.get(f"/projects/{project.id}/correct/{alt.id}/").content.decode()
    assert (
        "LLM suggestion" in body
        and "A red square on white." in body
        and "model not recorded" in body
    )
    client.post(f"/projects/{project.id}/correct/{alt.id}/submit/", {"action": "accept"})
    pair = CandidatePair.objects.get()
    assert (pair.alt_a, pair.alt_b, pair.known_preference, pair.source) == (
        suggestion,
        alt,
        "A",
        "correction",
    )


def test_both_bad_pairs_go_to_correction_first(project, member):
    plain = make_alt(post=make_post(project=project), text="first in line")
    pair = make_pair(project=project, a="bad one", b="bad two")
    client = login(member("r1"))
    aid, _ = next_item(client, project)
    client.post(f"/rate/items/{aid}/submit/", all_facets(project, "both-bad"))
    body = client.get(f"/projects/{project.id}/correct/").content.decode()
    assert f"/correct/{pair.alt_a_id}/submit/" in body
    assert plain.text not in body


def test_review_adjudication_wins_and_is_refused_to_annotators(project, member):
    from preferences.selectors import judgement_effective_choice

    project.overlap = 2
    project.save()
    pair = make_pair(project=project)
    r1, r2, reviewer = member("r1"), member("r2"), member("rev", "reviewer")
    for user, choice in [(r1, "A"), (r2, "B")]:
        c = login(user)
        aid, _ = next_item(c, project)
        Assignment.objects.filter(pk=aid).update(shown_order="AB")
        c.post(f"/rate/items/{aid}/submit/", all_facets(project, choice))
    assert login(r1).get(f"/projects/{project.id}/review/").status_code == 403
    assert login(r1).get(f"/projects/{project.id}/review/{pair.id}/").status_code == 403
    rc = login(reviewer)
    body = rc.get(f"/projects/{project.id}/review/").content.decode()
    assert f"Adjudicate pair {pair.id}" in body
    page = rc.get(f"/projects/{project.id}/review/{pair.id}/").content.decode()
    # Each vote with its rater's name (the votes table: rater, kind, one column per facet).
    flat = re.sub(r"\s+", "", page)
    assert '<thscope="row"><bdi>r1</bdi></th><td>Human</td><td>Aisbetter</td>' in flat
    assert '<thscope="row"><bdi>r2</bdi></th><td>Human</td><td>Bisbetter</td>' in flat
    assert (
        rc.post(f"/projects/{project.id}/review/{pair.id}/", {"facet-overall": "B"}).status_code
        == 400
    )
    rc.post(f"/projects/{project.id}/review/{pair.id}/", all_facets(project, "B"))
    assert Judgement.objects.filter(kind="adjudication").count() == project.facets.count()
    overall = project.facets.get(key="overall")
    assert judgement_effective_choice(pair=pair, facet=overall) == "B"
    assert "No disagreements" in rc.get(f"/projects/{project.id}/review/").content.decode()


def test_dashboard_numbers_and_admin_only(project, member):
    project.overlap = 2
    project.save()
    make_pair(project=project)
    r1, r2, admin = member("r1"), member("r2"), member("boss", "admin")
    for user in (r1, r2):
        c = login(user)
        aid, _ = next_item(c, project)
        Assignment.objects.filter(pk=aid).update(shown_order="AB")
        c.post(f"/rate/items/{aid}/submit/", all_facets(project, "A"))
    assert (
        login(member("rev", "reviewer")).get(f"/projects/{project.id}/dashboard/").status_code
        == 403
    )
    body = login(admin).get(f"/projects/{project.id}/dashboard/").content.decode()
    # Both chose the left side everywhere: 100 % agreement, 100 % left-choice rate.
    assert '<th scope="row">Overall</th><td>1</td><td>2</td>\n        <td>100.0 %</td>' in body
    assert '<th scope="row">r1</th><td>5</td><td>100.0 %</td>' in body


def test_non_members_get_404_everywhere(project, member, make_user):
    pair = make_pair(project=project)
    alt = pair.alt_a
    client = login(member("r1"))
    aid, _ = next_item(client, project)
    outsider = login(make_user("outsider"))
    for url in [
        f"/projects/{project.id}/rate/",
        f"/projects/{project.id}/rate/next/",
        f"/rate/items/{aid}/",
        f"/projects/{project.id}/correct/",
        f"/projects/{project.id}/correct/{alt.id}/",
        f"/projects/{project.id}/review/",
        f"/projects/{project.id}/dashboard/",
    ]:
        assert outsider.get(url).status_code == 404, url
    assert outsider.post(f"/rate/items/{aid}/submit/", all_facets(project)).status_code == 404
    assert (
        outsider.post(
            f"/projects/{project.id}/correct/{alt.id}/submit/", {"action": "keep"}
        ).status_code
        == 404
    )
    assert Judgement.objects.count() == 0 and not CorrectionReview.objects.exists()


def test_csrf_is_enforced_on_every_form(project, member):
    pair = make_pair(project=project)
    r1 = member("r1")
    aid, _ = next_item(login(r1), project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(r1)
    for url, data in [
        (f"/rate/items/{aid}/submit/", all_facets(project)),
        (f"/rate/items/{aid}/skip/", {}),
        (f"/rate/items/{aid}/undo/", {}),
        (f"/projects/{project.id}/correct/{pair.alt_a_id}/submit/", {"action": "keep"}),
        (f"/projects/{project.id}/correct/{pair.alt_a_id}/check/", {"text": "x"}),
        (f"/projects/{project.id}/review/{pair.id}/", all_facets(project)),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert Judgement.objects.count() == 0 and Assignment.objects.get(pk=aid).status == "reserved"
    # With the token from the page the same form goes through.
    page = client.get(f"/rate/items/{aid}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/rate/items/{aid}/submit/", {**all_facets(project), "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_llm_suggestion_shows_the_model_that_wrote_it(project, member):
    labelers = pytest.importorskip("preferences.labelers.models")
    from preferences.models import LLMLabeler

    post = make_post(project=project)
    alt = make_alt(post=post, text="pic")
    suggestion = make_alt(post=post, text="A red square.", origin="llm-corrected", parent=alt)
    labeler = LLMLabeler.objects.create(model_id="gemini-test-model", prompt_version="v1")
    labelers.LLMCorrection.objects.create(source=alt, labeler=labeler, result=suggestion)
    body = login(member("r1")).get(f"/projects/{project.id}/correct/{alt.id}/").content.decode()
    assert "Suggested by gemini-test-model." in body


def test_human_vs_llm_disagreement_reaches_review(project, member):
    from preferences.models import LLMLabeler
    from preferences.selectors import review_queue

    pair = make_pair(project=project)
    overall = project.facets.get(key="overall")
    rater = member("r1")
    Judgement.objects.create(pair=pair, facet=overall, kind="human", rater_user=rater, choice="A")
    assert review_queue(project=project) == []
    labeler = LLMLabeler.objects.create(model_id="gemini-x", prompt_version="v1")
    Judgement.objects.create(pair=pair, facet=overall, kind="llm", rater_llm=labeler, choice="B")
    assert review_queue(project=project) == [{"pair_id": pair.id, "facets": [overall.id]}]
    page = login(member("rev", "reviewer")).get(f"/projects/{project.id}/review/{pair.id}/")
    flat = re.sub(r"\s+", "", page.content.decode())
    assert "<bdi>gemini:gemini-x@v1</bdi></th><td>LLM</td><td>Bisbetter</td>" in flat
