"""Test settings: only what tests need differs from config.settings."""

import os
import tempfile

# Tests (and the servers and workers they start, which inherit this) may use the dev key.
os.environ.setdefault("ALTPREF_LOCAL_DEV", "true")

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
# Django's test client logs in without a request, which django-axes refuses; the lockout
# tests (tests/security) switch it back on.
AXES_ENABLED = False
