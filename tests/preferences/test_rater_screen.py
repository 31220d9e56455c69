"""The judge screen's server side (issue 21): required facets, the htmx and prefetch paths,
history edits with their audit, the rater's keys and goal, hostile text, error pages, favicon."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotate.checks import alt_text_checks, char_count, hostile_text_findings
from core.errors import ApplicationError
from preferences.consensus.selectors import consensus_policy_get
from preferences.models import Assignment, Facet, Judgement, JudgementEdit, RaterSettings
from preferences.rating.history import assignment_edit, rater_history, rater_remaining
from preferences.rating.keyprefs import keymap_clean
from preferences.rating.queue import assignment_next, assignment_prefetch, assignment_submit
from tests.ui.factories import all_facets, make_pair

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def next_item(client, project) -> tuple[int, str]:
    client.get(f"/projects/{project.id}/rate/")
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    return int(re.search(r"/rate/items/(\d+)/submit/", body).group(1)), body


def test_optional_facets_may_be_left_blank_required_ones_may_not(project, member):
    Facet.objects.filter(project=project).exclude(key="overall").update(required=False)
    make_pair(project=project)
    client = login(member("r1"))
    aid, body = next_item(client, project)
    assert "(optional)" in body
    assert body.count(" required>") == 4  # the overall row's four radios only
    response = client.post(f"/rate/items/{aid}/submit/", {"facet-concise": "B"})
    assert response.status_code == 400 and "missing: Overall" in response.content.decode()
    response = client.post(
        f"/rate/items/{aid}/submit/", {"facet-overall": "tie", "facet-concise": "bogus"}
    )
    assert response.status_code == 400
    response = client.post(f"/rate/items/{aid}/submit/", {"facet-overall": "tie"})
    assert response.status_code == 302
    assert list(Judgement.objects.values_list("facet__key", "choice")) == [("overall", "tie")]


def test_htmx_submit_returns_the_next_item_fragment_and_its_address(project, member):
    make_pair(project=project)
    make_pair(project=project)
    client = login(member("r1"))
    aid, _ = next_item(client, project)
    response = client.post(
        f"/rate/items/{aid}/submit/", all_facets(project), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    nxt = int(re.search(r'data-assignment="(\d+)"', body).group(1))
    assert nxt != aid and response["HX-Push-Url"] == f"/rate/items/{nxt}/"
    assert 'data-flash="Saved your answers. Next item."' in body and "Item 2" in body
    # The last one: the queue is empty, htmx is sent to the page that says so.
    response = client.post(
        f"/rate/items/{nxt}/submit/", all_facets(project), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204 and "/rate/next/?done=saved" in response["HX-Redirect"]
    # A GET of the submit address (a sign-in redirect back to it) shows the item instead.
    assert client.get(f"/rate/items/{aid}/submit/")["Location"] == f"/rate/items/{aid}/"


def test_prefetch_reserves_the_next_item_without_changing_what_next_serves(project, member):
    p1, p2, p3 = (make_pair(project=project) for _ in range(3))
    rater = member("r1")
    client = login(rater)
    aid, _ = next_item(client, project)
    response = client.get(f"/rate/items/{aid}/prefetch/")
    nxt = int(re.search(r'data-assignment="(\d+)"', response.content.decode()).group(1))
    assert nxt != aid and response["X-Item-Url"] == f"/rate/items/{nxt}/"
    # Asking again is idempotent; Next still serves the current item, never the prefetched.
    again = client.get(f"/rate/items/{aid}/prefetch/").content.decode()
    assert f'data-assignment="{nxt}"' in again
    assert Assignment.objects.filter(status="reserved").count() == 2
    assert assignment_next(project=project, user=rater).pk == aid
    # Submit with the prefetched item named: stored, and the prefetched item's clock restarts.
    before = Assignment.objects.get(pk=nxt).reserved_at
    response = client.post(
        f"/rate/items/{aid}/submit/", all_facets(project), HTTP_X_NEXT_ITEM=str(nxt)
    )
    assert response.status_code == 204 and response["X-Undo-Url"] == f"/rate/items/{aid}/undo/"
    assert response["X-Next-Item-Live"] == "1"
    assert Assignment.objects.get(pk=nxt).reserved_at > before
    assert Judgement.objects.filter(pair__assignments=aid).count() == 5
    assert assignment_next(project=project, user=rater).pk == nxt  # now the current one
    # The prefetched item is the next one's "next" no more once it is current.
    third = assignment_prefetch(
        project=project, user=rater, policy=consensus_policy_get(project=project), current_id=nxt
    )
    assert third is not None and third.pk not in (aid, nxt)
    del p1, p2, p3


def test_prefetch_respects_overlap_and_an_empty_queue(project, member):
    make_pair(project=project)
    r1, r2 = member("r1"), member("r2")  # overlap 1: one rater per pair
    a1 = assignment_next(project=project, user=r1)
    policy = consensus_policy_get(project=project)
    assert assignment_prefetch(project=project, user=r1, policy=policy, current_id=a1.pk) is None
    assert assignment_next(project=project, user=r2) is None
    response = login(r1).get(f"/rate/items/{a1.pk}/prefetch/")
    assert response.status_code == 204


def test_edit_a_submitted_item_replaces_the_answer_and_keeps_an_audit(project, member):
    make_pair(project=project)
    rater = member("r1")
    a = assignment_next(project=project, user=rater)
    assignment_submit(
        assignment_id=a.pk, user=rater, answers={f.key: "A" for f in project.facets.all()}
    )
    shown = {f.key: "A" for f in project.facets.all()} | {"overall": "tie"}
    assert assignment_edit(assignment_id=a.pk, user=rater, answers=shown, rationale="why") == 1
    overall = Judgement.objects.get(facet__key="overall")
    assert overall.choice == "tie" and overall.rationale == "why"
    edit = JudgementEdit.objects.get()
    a.refresh_from_db()
    assert edit.old_choice == ("A" if a.shown_order == "AB" else "B") and edit.new_choice == "tie"
    history = rater_history(project=project, user=rater)
    assert history[0].edited and history[0].editable_until is not None
    # Required facets stay required; after the window nothing changes.
    with pytest.raises(ApplicationError, match="missing: Overall"):
        assignment_edit(assignment_id=a.pk, user=rater, answers={**shown, "overall": ""})
    Assignment.objects.filter(pk=a.pk).update(
        reserved_until=timezone.now() - timedelta(seconds=1),
        submitted_at=timezone.now() - timedelta(hours=1),
    )
    with pytest.raises(ApplicationError, match="time to edit") as exc:
        assignment_edit(assignment_id=a.pk, user=rater, answers=shown | {"overall": "B"})
    assert exc.value.status_code == 409
    assert Judgement.objects.get(facet__key="overall").choice == "tie"
    assert rater_history(project=project, user=rater)[0].editable_until is None


def test_reopen_page_shows_the_answers_and_saves_the_edit(project, member):
    from django.core.cache import cache

    cache.clear()
    make_pair(project=project)
    make_pair(project=project)
    rater = member("r1")
    client = login(rater)
    aid, _ = next_item(client, project)
    client.post(f"/rate/items/{aid}/submit/", all_facets(project, "tie"))
    body = client.get(f"/rate/items/{aid}/").content.decode()
    assert "Edit your answers" in body and f'action="/rate/items/{aid}/edit/"' in body
    assert body.count('value="tie" data-key="3" checked') == 5
    response = client.post(f"/rate/items/{aid}/edit/", all_facets(project, "both-bad"))
    assert response.status_code == 302 and "done=edited" in response["Location"]
    assert set(Judgement.objects.values_list("choice", flat=True)) == {"both-bad"}
    assert JudgementEdit.objects.count() == 5
    status = client.get(f"/projects/{project.id}/rate/status/").content.decode()
    assert "both-bad on all 5 facets" in status and "(edited)" in status
    assert ">1<" in status  # one pair left for this rater
    assert client.get(f"/projects/{project.id}/rate/history/").status_code == 200


def test_remaining_counts_what_the_rater_can_still_be_served(project, member):
    from django.core.cache import cache

    cache.clear()  # ids repeat between tests; the count is cached for a few seconds
    for _ in range(3):
        make_pair(project=project)
    r1 = member("r1")
    assert rater_remaining(project=project, user=r1) == 3
    a = assignment_next(project=project, user=r1)
    assignment_submit(
        assignment_id=a.pk, user=r1, answers={f.key: "A" for f in project.facets.all()}
    )
    cache.clear()
    assert rater_remaining(project=project, user=r1) == 2


def test_keys_and_goal_are_per_user_validated_and_on_the_page(project, member):
    make_pair(project=project)
    rater = member("r1")
    client = login(rater)
    form = {f"key-{a}": "" for a in ["choose_a", "skip"]} | {"daily_goal": "40"}
    form["key-choose_a"] = "q"
    response = client.post("/rate/keys/", form)
    assert response.status_code == 302
    settings = RaterSettings.objects.get(user=rater)
    assert settings.keymap == {"choose_a": "q"} and settings.daily_goal == 40
    assert not settings.shortcuts_enabled  # the box was not ticked
    _, body = next_item(client, project)
    assert 'data-enabled="false"' in body and "&quot;choose_a&quot;:&quot;q&quot;" in body
    status = client.get(f"/projects/{project.id}/rate/status/").content.decode()
    assert "of your goal of 40" in status
    bad = client.post("/rate/keys/", {"enabled": "on", "key-choose_a": "s", "daily_goal": ""})
    assert bad.status_code == 400 and "used twice" in bad.content.decode()
    bad = client.post("/rate/keys/", {"enabled": "on", "key-skip": "ab", "daily_goal": "x"})
    assert bad.status_code == 400
    with pytest.raises(ApplicationError, match="letters or digits"):
        keymap_clean({"choose_b": "?", "help": "/"})
    with pytest.raises(ApplicationError, match="Unknown shortcut"):
        keymap_clean({"launch": "l"})


def test_hostile_text_is_flagged_and_shown_with_visible_controls(project, member):
    assert {f.key for f in hostile_text_findings("Invoice\u202eexe.txt")} == {"bidi"}
    assert {f.key for f in hostile_text_findings("<b>Bold</b> &amp; more")} == {"markup"}
    assert {f.key for f in hostile_text_findings(" ".join(["word"] * 900))} == {"too-long"}
    assert hostile_text_findings("A red circle, 3 < 4 & so on.") == []
    keys = {f.key for f in alt_text_checks(text="<i>x</i>\u2067y")}
    assert {"markup", "bidi"} <= keys
    # One counting rule: code points (an emoji is one, as keys.js counts it).
    assert char_count("🐱ab") == 3
    length = next(f for f in alt_text_checks(text="🐱" * 10) if f.key == "length")
    assert length.message.startswith("10 characters")
    make_pair(project=project, context="Files\u202e", a="Invoice\u202eexe.txt", b="<b>B</b>")
    _, body = next_item(client := login(member("r1")), project)
    assert "\u202e" not in body and "[RLO]</span>exe.txt" in body
    assert 'dir="auto"' in body and 'data-flag="bidi"' in body and 'data-flag="markup"' in body
    del client


def test_one_h1_and_each_text_once_on_the_judge_page(project, member):
    project.guidelines = "# Rules\n\nBe brief."
    project.save()
    make_pair(project=project, context="Look at this!", a="Alpha text", b="Beta text")
    _, body = next_item(login(member("r1")), project)
    assert body.count("<h1") == 1 and "<h3>Rules</h3>" in body
    # Shown once; the "what a screen reader says" line sits in a closed disclosure.
    assert body.count(">Alpha text</p>") == 1
    assert re.search(r'<details class="sr-says" id="sr-A">', body)


def test_error_pages_csrf_failure_and_favicon(project, member, client):
    client.force_login(member("r1"))
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and "Not found" in response.content.decode()
    assert "favicon.svg" in response.content.decode()
    assert client.get("/favicon.ico").status_code == 301
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member("r2"))
    response = strict.post("/rate/items/7/submit/", {"facet-overall": "A"})
    body = response.content.decode()
    assert response.status_code == 403 and "Sign in again" in body
    assert "/login/?next=%2Frate%2Fitems%2F7%2F" in body and "<html" in body
    fragment = strict.post("/rate/items/7/submit/", {}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "data-sign-in" in fragment


def test_server_error_page_is_the_apps_own(rf):
    from django.views.defaults import server_error

    response = server_error(rf.get("/"))
    assert (
        response.status_code == 500
        and "Something went wrong on our side" in response.content.decode()
    )
