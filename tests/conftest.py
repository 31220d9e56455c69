"""Shared fixtures: users with roles, projects, the reference sample data, image factories."""

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parent.parent
SAMPLE = (REPO.parent / "shared" / "datasets" / "mcmdpo-sample").resolve()

# (json file, images folder) for the four reference sample files.
SAMPLE_FILES = [
    (SAMPLE / "twitter" / "twitter_train.json", SAMPLE / "twitter" / "image" / "twitter_train"),
    (SAMPLE / "twitter" / "twitter_test.json", SAMPLE / "twitter" / "image" / "twitter_test"),
    (SAMPLE / "pinterest" / "pinterest_train.json", SAMPLE / "pinterest" / "image" / "pinterest_train"),
    (SAMPLE / "pinterest" / "pinterest_test.json", SAMPLE / "pinterest" / "image" / "pinterest_test"),
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
    from annotate.services import project_create

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
