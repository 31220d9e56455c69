"""make run's seed: a demo project with pairs and three accounts whose passwords are printed."""

import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotate.models import Image, Membership, Post, Project
from preferences.models import CandidatePair

pytestmark = pytest.mark.django_db


def test_seed_creates_demo_once_and_prints_working_credentials(capsys):
    call_command("seed_demo")
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
    call_command("seed_demo")
    again = capsys.readouterr().out
    assert "password" not in again.split("(")[0] and Project.objects.count() == 1
    call_command("seed_demo", "--reset-passwords")
    fresh = dict(re.findall(r"demo account\s+(\w+)\s+password\s+(\S+)", capsys.readouterr().out))
    assert authenticate(username="annotator", password=fresh["annotator"]) is not None
    assert authenticate(username="annotator", password=creds["annotator"]) is None
