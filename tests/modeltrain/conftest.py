"""Fixtures for training rounds: a project of synthetic coloured-shape posts in the database and a
real PAlt snapshot exported from it (snapshots.services.snapshot_export), on the tiny CPU model."""

import hashlib
import io
import json
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

# The fake Gemini server fixtures, for rounds whose new pairs the LLM judge pre-labels.
from tests.labelers.conftest import fake_gemini, gemini_off, gemini_on  # noqa: E402, F401


def add_synthetic_posts(project, *, train: int = 12, test: int = 4, seed: int = 0):
    """Train posts with an imported chosen/rejected pair each, test posts with a reference."""
    from django.conf import settings

    from annotate.models import AltText, Image, Post
    from modeltrain.mcmdpo.synthetic import COLOURS, SHAPES, TOPICS, alt_text, draw_shape
    from modeltrain.mcmdpo.synthetic import post_text as make_post_text
    from preferences.models import CandidatePair

    rng = random.Random(seed)
    media = Path(settings.MEDIA_ROOT)
    (media / "images").mkdir(parents=True, exist_ok=True)

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    posts = []
    for index in range(train + test):
        colour, shape, topic = rng.choice(list(COLOURS)), rng.choice(SHAPES), TOPICS[index % 4]
        buf = io.BytesIO()
        draw_shape(colour, shape, 48, rng).save(buf, format="PNG")
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        name = f"images/{digest}.png"
        (media / name).write_bytes(data)
        image, _ = Image.objects.get_or_create(
            sha256=digest,
            defaults=dict(file=name, mime="image/png", width=48, height=48, size_bytes=len(data)),
        )
        context = make_post_text(topic, rng)
        split = "train" if index < train else "test"
        post = Post.objects.create(
            project=project,
            platform="twitter",
            external_id=f"syn-{seed}-{index}",
            content_key=sha(f"{digest}|{context}|{index}"),
            context=context,
            split=split,
            image=image,
        )
        good = alt_text(colour, shape, topic)
        if split == "train":
            other = rng.choice([c for c in COLOURS if c != colour])
            bad = alt_text(other, shape, topic)
            a = AltText.objects.create(
                post=post, text=good, text_sha256=sha(good), origin="imported-chosen"
            )
            b = AltText.objects.create(
                post=post, text=bad, text_sha256=sha(bad), origin="imported-rejected"
            )
            CandidatePair.objects.create(
                post=post, alt_a=a, alt_b=b, source="import", known_preference="A"
            )
        else:
            AltText.objects.create(post=post, text=good, text_sha256=sha(good), origin="reference")
        posts.append(post)
    return posts


def export_palt_snapshot(project):
    """A done PAlt snapshot whose folder was written by the snapshots app's real exporter."""
    from django.conf import settings

    from snapshots.models import Snapshot
    from snapshots.services import snapshot_export, snapshot_filters_build

    filters = snapshot_filters_build(kind="palt", project=project)
    snapshot = Snapshot.objects.create(
        project=project, kind="palt", formats=["mcmdpo"], filters=filters.as_dict()
    )
    folder = Path(settings.MEDIA_ROOT) / snapshot.folder
    manifest = snapshot_export(kind="palt", filters=filters, formats=["mcmdpo"], out_dir=folder)
    checksum = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    Snapshot.objects.filter(pk=snapshot.pk).update(
        status="done", progress=100, checksum=checksum, manifest=manifest, counts=manifest["counts"]
    )
    snapshot.refresh_from_db()
    return snapshot


@pytest.fixture
def admin_user(make_user, project):
    from annotate.services import membership_set

    user = make_user("round-admin")
    membership_set(project=project, user=user, role="admin")
    return user


@pytest.fixture
def loop_data(project, admin_user, settings, tmp_path):
    """Posts + a done PAlt snapshot; rounds write under tmp_path; progress every step."""
    settings.ALTPREF_ROUNDS = {
        **settings.ALTPREF_ROUNDS,
        "DIR": str(tmp_path / "rounds"),
        "PROGRESS_EVERY": 1,
        "HEARTBEAT_S": 1.0,
    }
    add_synthetic_posts(project)
    snapshot = export_palt_snapshot(project)
    return {"project": project, "user": admin_user, "snapshot": snapshot}


def fast_hyperparameters(**extra) -> dict:
    values = {"max_steps": 6, "save_steps": 2}
    values.update(extra)
    return values


FAST_OPTIONS = {"max_new_tokens": 8, "num_beams": 1, "eval_limit": 4, "feedback_limit": 4}


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
