"""Fixtures for the Django-free MCM-DPO library: a tiny LLaVA saved to disk and synthetic snapshots."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = (REPO_ROOT / ".." / "shared" / "datasets" / "mcmdpo-sample").resolve()


@pytest.fixture(autouse=True)
def _media_root():
    """Shadows tests/conftest.py's Django media fixture: this package never touches Django."""


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"reference sample data not found at {SAMPLE_DIR}")
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def synthetic_snapshot(tmp_path_factory) -> Path:
    from modeltrain.mcmdpo.synthetic import write_snapshot

    return write_snapshot(tmp_path_factory.mktemp("synthetic"), count=32, seed=0)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny LLaVA (and its processor) saved to a folder, loadable with the Auto classes."""
    from modeltrain.mcmdpo.synthetic import vocabulary
    from modeltrain.mcmdpo.tiny import save_tiny_llava

    texts = list(vocabulary())
    if SAMPLE_DIR.is_dir():
        from modeltrain.mcmdpo.formats import read_records

        texts += [f"{r.context} {r.chosen} {r.rejected}" for r in read_records(SAMPLE_DIR)]
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"), texts, seed=0)


@pytest.fixture(scope="session")
def tiny_model_and_processor(tiny_base):
    from modeltrain.mcmdpo.modeling import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_base))
    return model.eval(), processor
