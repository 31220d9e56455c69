"""Shared fixtures: users with roles, projects, the reference sample data, image factories."""

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

# Browser fixtures (shot, audit, login, Chromium launch args) for every e2e test.
pytest_plugins = ["tests.browser"]

REPO = Path(__file__).resolve().parent.parent
SAMPLE = (REPO.parent / "shared" / "datasets" / "mcmdpo-sample").resolve()

# (json file, images folder) for the four reference sample files.
SAMPLE_FILES = [
    (SAMPLE / "twitter" / "twitter_train.json", SAMPLE / "twitter" / "image" / "twitter_train"),
    (SAMPLE / "twitter" / "twitter_test.json", SAMPLE / "twitter" / "image" / "twitter_test"),
    (
        SAMPLE / "pinterest" / "pinterest_train.json",
        SAMPLE / "pinterest" / "image" / "pinterest_train",
    ),
    (
        SAMPLE / "pinterest" / "pinterest_test.json",
        SAMPLE / "pinterest" / "image" / "pinterest_test",
    ),
]


@pytest.fixture
def sample_files():
    if not SAMPLE.is_dir():
        pytest.fail(f"reference sample data not found at {SAMPLE}")
    return SAMPLE_FILES


def png_bytes(colour=(200, 30, 30), size=(16, 16), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_png():
    return png_bytes


@pytest.fixture
def project(db):
    from preferences.projects import project_create

    return project_create(name="Test project")


@pytest.fixture
def make_user(db, django_user_model):
    def make(username, *, staff=False):
        return django_user_model.objects.create_user(
            username=username, password="pw-" + username, is_staff=staff, is_superuser=staff
        )

    return make


@pytest.fixture
def member(project, make_user):
    """Factory: a user with a role in `project`."""
    from annotate.services import membership_set

    def make(username, role="annotator"):
        user = make_user(username)
        membership_set(project=project, user=user, role=role)
        return user

    return make


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Each test gets its own media folder, so stored files never leak between tests."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def post(project):
    """A bare post with a placeholder image row (no file): for model-level tests."""
    from annotate.models import Image, Post

    image = Image.objects.create(
        sha256="a" * 64, file="images/x.png", mime="image/png", width=1, height=1, size_bytes=1
    )
    return Post.objects.create(
        project=project, platform="twitter", content_key="k", context="c", image=image
    )


@pytest.fixture
def pair(post):
    """An imported pair on `post`: A (chosen) preferred over B (rejected)."""
    from annotate.models import AltText
    from preferences.models import CandidatePair

    a = AltText.objects.create(post=post, text="a", text_sha256="1", origin="imported-chosen")
    b = AltText.objects.create(post=post, text="b", text_sha256="2", origin="imported-rejected")
    return CandidatePair.objects.create(
        post=post, alt_a=a, alt_b=b, source="import", known_preference="A"
    )


@pytest.fixture
def celery_worker_running():
    """A real Celery worker thread (celery.contrib.testing) on the app's own configuration,
    consuming the `celery` and `gpu` queues: through Redis when CELERY_BROKER_URL names it,
    else the in-memory transport. Use with django_db(transaction=True) so it sees the data."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(
            app,
            queues=["celery", "gpu"],
            perform_ping_check=False,
            pool="solo",
            shutdown_timeout=30,
        ):
            yield
    finally:
        app.conf.task_always_eager = eager


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run only where CUDA is; elsewhere they are skipped with the reason."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_tests:
        item.add_marker(skip)
