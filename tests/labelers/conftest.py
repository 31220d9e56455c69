"""Fixtures: a fake Gemini server on loopback, settings pointing the real SDK at it, and a
project with posts, stored images, user-written alt-texts and pairs."""

import hashlib

import pytest
from django.core.files.base import ContentFile

from preferences.labelers.fake_gemini import FakeGemini
from preferences.labelers.fake_openai import FakeOpenAI

# The browser fixtures (Debian Chromium, login, screenshots, axe) for test_e2e_dashboard.py.


@pytest.fixture
def fake_gemini():
    fake = FakeGemini(slow_seconds=1.0)
    fake.url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def gemini_on(settings, fake_gemini):
    settings.GEMINI_API_KEY = "test-key"
    settings.GEMINI_MODEL = "gemini-2.5-flash"
    settings.GEMINI_BASE_URL = fake_gemini.url
    settings.GEMINI_MAX_RETRIES = 2
    settings.GEMINI_RETRY_BASE_DELAY_S = 0.01
    settings.GEMINI_TIMEOUT_S = 0.4
    settings.GEMINI_RPM = 100_000
    settings.GEMINI_BUDGET_USD = "5"
    settings.GEMINI_BATCH_SIZE = 2
    return fake_gemini


@pytest.fixture
def gemini_off(settings):
    settings.GEMINI_API_KEY = ""
    settings.GEMINI_BASE_URL = ""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""


@pytest.fixture
def fake_openai():
    fake = FakeOpenAI(slow_seconds=1.0)
    fake.url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def openai_on(settings, fake_openai):
    """Only the OpenAI-compatible provider configured, pointed at the fake server (a self-hosted
    model name: no per-token price)."""
    settings.GEMINI_API_KEY = ""
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = fake_openai.url + "/v1"
    settings.OPENAI_MODEL = "fake-vlm"
    settings.OPENAI_MAX_RETRIES = 2
    settings.OPENAI_RETRY_BASE_DELAY_S = 0.01
    settings.OPENAI_TIMEOUT_S = 0.4
    settings.OPENAI_RPM = 100_000
    settings.OPENAI_BUDGET_USD = "5"
    settings.OPENAI_BATCH_SIZE = 2
    return fake_openai


@pytest.fixture(params=["gemini", "openai"])
def judge_on(request):
    """Each test that takes it runs once per provider, against that provider's fake server."""
    fake = request.getfixturevalue(f"{request.param}_on")
    fake.provider = request.param
    return fake


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def corpus(project, make_png):
    """3 posts with real image files; each has a typo'd user alt-text and one pair."""
    from annotate.models import AltText, Image, Post
    from preferences.models import CandidatePair

    posts, alts, pairs = [], [], []
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        data = make_png(colour)
        sha = hashlib.sha256(data).hexdigest()
        image = Image(sha256=sha, mime="image/png", width=16, height=16, size_bytes=len(data))
        image.file.save(f"images/{sha}.png", ContentFile(data), save=False)
        image.save()
        post = Post.objects.create(
            project=project,
            platform="twitter",
            content_key=f"k{i}",
            context=f"Post number {i} about our day out",
            image=image,
        )
        user = AltText.objects.create(
            post=post,
            text=f"a dog on teh beach {i}",
            text_sha256=_sha(f"u{i}"),
            origin="user-written",
        )
        short = AltText.objects.create(
            post=post, text="dog", text_sha256=_sha(f"s{i}"), origin="imported-rejected"
        )
        long = AltText.objects.create(
            post=post,
            text=f"A brown dog running on a sandy beach at sunset {i}",
            text_sha256=_sha(f"l{i}"),
            origin="imported-chosen",
        )
        # alt_a is the short one, so "the longer wins" means the stored choice is B.
        pairs.append(
            CandidatePair.objects.create(post=post, alt_a=short, alt_b=long, source="import")
        )
        posts.append(post)
        alts.append(user)
    return {"project": project, "posts": posts, "alts": alts, "pairs": pairs}
