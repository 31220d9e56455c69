"""NUL characters, lone surrogates and over-deep JSON from users are 400s with a message on
both databases (PostgreSQL refuses NUL in text; no driver encodes a lone surrogate)."""

import json

import pytest
from django.test import Client

from annotate.models import AltText
from preferences.models import Assignment, CandidatePair, Judgement
from tests.ui.factories import all_facets, make_alt, make_pair, make_post
from tests.ui.test_views import next_item

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_nul_in_the_correction_text_is_a_400_with_a_message(project, member):
    alt = make_alt(post=make_post(project=project), text="image of a circle")
    client = _login(member("r1"))
    body = {"action": "edit", "text": "a red\x00circle"}
    response = client.post(f"/projects/{project.id}/correct/{alt.id}/submit/", body)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert AltText.objects.count() == 1 and not CandidatePair.objects.exists()


def test_a_nul_in_a_rating_rationale_is_a_400_and_the_choices_stay(project, member):
    make_pair(project=project)
    client = _login(member("r1"))
    assignment_id, _ = next_item(client, project)
    form = all_facets(project)
    response = client.post(
        f"/rate/items/{assignment_id}/submit/", {**form, "rationale": "because\x00"}
    )
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert not Judgement.objects.exists()
    assert Assignment.objects.get(pk=assignment_id).status == "reserved"
    # The same form without the NUL goes through.
    ok = client.post(f"/rate/items/{assignment_id}/submit/", {**form, "rationale": "because"})
    assert ok.status_code == 302 and Judgement.objects.exists()


@pytest.mark.parametrize("bad", ["why\x00", "why \ud800"])
def test_the_api_refuses_nul_and_lone_surrogates_in_a_rationale(project, member, bad):
    """Already a 400 before (DRF's CharField); kept so the service-level check stays in line."""
    pair = make_pair(project=project)
    client = _login(member("r1"))
    facet = project.facets.first()
    # ensure_ascii keeps "\ud800" as an escape, as a hostile client would send it.
    body = json.dumps(
        {"pair": pair.pk, "facet": facet.key, "choice": "A", "rationale": bad}, ensure_ascii=True
    )
    response = client.post(
        f"/api/projects/{project.pk}/judgements/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["message"]
    assert not Judgement.objects.exists()


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_json_body_is_a_400_with_a_message(project, member, depth):
    pair = make_pair(project=project)
    client = _login(member("r1"))
    nested = "[" * depth + "]" * depth
    body = f'{{"pair": {pair.pk}, "facet": "x", "choice": "A", "rationale": {nested}}}'
    response = client.post(
        f"/api/projects/{project.pk}/judgements/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested deeper" in response.json()["message"]
