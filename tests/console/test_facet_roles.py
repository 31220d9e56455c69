"""Facet roles: a new project's facets have them, the console moves them (one facet per role),
and the code that needs "the overall facet" (exports, rounds) follows the role, not the key."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from modeltrain.selectors import overall_facet_key
from preferences.models import Facet
from snapshots.services import snapshot_filters_build

pytestmark = pytest.mark.django_db


def _form(project, **changes):
    """The console's facet form as the page posts it, with `changes` on top."""
    data = {"action": "facets"}
    for f in Facet.objects.filter(project=project):
        data |= {
            f"label-{f.pk}": f.label,
            f"question-{f.pk}": f.question,
            f"active-{f.pk}": "on",
            f"required-{f.pk}": "on",
            f"role-{f.pk}": f.role,
        }
    return data | changes


def _roles(project) -> dict[str, str]:
    return dict(Facet.objects.filter(project=project).values_list("key", "role"))


def test_a_new_project_gets_roles_for_its_default_facets(project):
    assert _roles(project) == {
        "overall": "overall",
        "faithful": "image",
        "context": "context",
        "concise": "other",
        "fluent": "other",
    }


def test_the_console_moves_a_role_and_exports_and_rounds_follow_it(client, project, member):
    client.force_login(member("boss", role="admin"))
    url = reverse("console:settings", args=[project.pk])
    page = client.get(url).content.decode()
    assert 'aria-label="Role of facet overall"' in page
    by_key = {f.key: f for f in Facet.objects.filter(project=project)}
    overall, concise = by_key["overall"], by_key["concise"]

    # The overall role moves from "overall" to "concise" in one save (a swap).
    response = client.post(
        url, _form(project, **{f"role-{overall.pk}": "other", f"role-{concise.pk}": "overall"})
    )
    assert response.status_code == 302
    assert _roles(project)["concise"] == "overall" and _roles(project)["overall"] == "other"
    assert snapshot_filters_build(kind="palt", project=project).facets == ["concise"]
    assert overall_facet_key(project_id=project.pk) == "concise"

    # Two facets with one role: refused, nothing changes.
    refused = client.post(url, _form(project, **{f"role-{overall.pk}": "overall"}))
    assert refused.status_code == 400
    assert "both have the role" in refused.content.decode()
    assert _roles(project)["concise"] == "overall" and _roles(project)["overall"] == "other"

    added = client.post(
        url,
        {"action": "facet-add", "key": "tone", "label": "Tone", "question": "Which?", "role": "x"},
    )
    assert added.status_code == 400 and "Unknown facet role" in added.content.decode()
    client.post(
        url,
        {"action": "facet-add", "key": "tone", "label": "Tone", "question": "Which?"},
    )
    assert _roles(project)["tone"] == "other"


def test_an_export_without_an_overall_facet_asks_for_facets(project):
    Facet.objects.filter(project=project, role="overall").update(role="other")
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError, match="No facet has the overall role"):
        snapshot_filters_build(kind="palt", project=project)
    assert snapshot_filters_build(kind="palt", project=project, facets=["fluent"]).facets == [
        "fluent"
    ]


def test_the_migration_gives_existing_facets_their_roles_by_key(project):
    Facet.objects.filter(project=project).update(role="other")
    migration = importlib.import_module("preferences.migrations.0012_facet_role")
    migration.roles_from_keys(apps, None)
    assert _roles(project)["overall"] == "overall" and _roles(project)["faithful"] == "image"
    assert _roles(project)["context"] == "context" and _roles(project)["fluent"] == "other"
