"""Test settings: only what tests need differs from config.settings."""

import tempfile

from .settings import *  # noqa: F403
from .settings import DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
MEDIA_ROOT = tempfile.mkdtemp(prefix="altpref-test-media-")
DEBUG = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # pytest-django makes the test database; keep it on disk so a real worker thread can share it.
    DATABASES["default"]["TEST"] = {
        "NAME": tempfile.mktemp(prefix="altpref-test-", suffix=".sqlite3")
    }
