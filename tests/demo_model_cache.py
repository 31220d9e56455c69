"""One demo-model cache per test session, so the ~1 minute build happens once for every test file
that needs the real demo model (tests/mcmdpo/test_demo_model.py, tests/modeltrain/test_seed_demo.py)."""

from pathlib import Path


def session_demo_cache(tmp_path_factory) -> Path:
    # getbasetemp() is the same for the whole session; the builder's atomic rename makes a
    # second (or concurrent) caller reuse the first build.
    return tmp_path_factory.getbasetemp() / "demo-model-cache"
