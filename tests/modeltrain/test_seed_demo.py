"""make run's seed: a demo project of alt-text task posts with pairs, three accounts whose passwords
are printed, and the demo base model that "tiny" rounds of that project start from."""

import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotate.models import AltText, Image, Membership, Post, Project, Split
from preferences.models import CandidatePair
from tests.demo_model_cache import session_demo_cache

pytestmark = pytest.mark.django_db


def test_seed_creates_demo_once_and_prints_working_credentials(capsys):
    call_command("seed_demo", "--no-model")
    out = capsys.readouterr().out
    creds = dict(re.findall(r"demo account\s+(\w+)\s+password\s+(\S+)", out))
    assert set(creds) == {"admin", "reviewer", "annotator"}
    for username, password in creds.items():
        assert authenticate(username=username, password=password) is not None
    project = Project.objects.get()
    assert CandidatePair.objects.filter(post__project=project).count() >= 24
    assert Image.objects.count() < Post.objects.count()  # images shared between posts
    assert set(Membership.objects.values_list("user__username", "role")) == {
        ("admin", "admin"),
        ("reviewer", "reviewer"),
        ("annotator", "annotator"),
    }
    call_command("seed_demo", "--no-model")
    again = capsys.readouterr().out
    assert "password" not in again.split("(")[0] and Project.objects.count() == 1
    call_command("seed_demo", "--reset-passwords")
    fresh = dict(re.findall(r"demo account\s+(\w+)\s+password\s+(\S+)", capsys.readouterr().out))
    assert authenticate(username="annotator", password=fresh["annotator"]) is not None
    assert authenticate(username="annotator", password=creds["annotator"]) is None


def test_seeded_posts_come_from_the_alt_text_task():
    from modeltrain.mcmdpo import alttext_task

    call_command("seed_demo", "--no-model")
    posts = Post.objects.all()
    # Each post says which part of its picture it is about.
    assert all(re.search(r"\b(left|right|sign)\b", p.context) for p in posts)
    test_posts = posts.filter(split=Split.TEST)
    assert test_posts.count() == 16
    pairs = CandidatePair.objects.select_related("alt_a", "alt_b")
    texts = {t for pair in pairs for t in (pair.alt_a.text, pair.alt_b.text)}
    assert any(t in alttext_task.FILE_NAMES for t in texts)  # a file name is among the rejected
    assert any(t.startswith("image of") for t in AltText.objects.values_list("text", flat=True))


def test_tiny_rounds_of_the_demo_start_from_the_trained_demo_model(
    tmp_path_factory, monkeypatch, capsys
):
    from modeltrain.mcmdpo import demo_model
    from modeltrain.services import tiny_base_for_project

    monkeypatch.setenv("ALTPREF_DEMO_MODEL_DIR", str(session_demo_cache(tmp_path_factory)))
    call_command("seed_demo")
    out = capsys.readouterr().out
    built = demo_model.demo_model_path()
    assert f"Demo base model: {built}" in out and demo_model.is_built(built)
    project = Project.objects.get()
    assert tiny_base_for_project(project_id=project.pk) == built
    # A project with words the demo model does not know gets the project-specific tiny model.
    other = Project.objects.create(name="other")
    image = Image.objects.first()
    Post.objects.create(
        project=other,
        image=image,
        platform="twitter",
        content_key="cooking",
        context="my post about cooking with friends",
    )
    assert tiny_base_for_project(project_id=other.pk) != built
