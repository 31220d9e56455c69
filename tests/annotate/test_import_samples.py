"""The four reference sample files import as they are, idempotently, with images stored once."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from annotate.models import AltText, AltTextOrigin, Image, Platform, Post, Split
from core.prompts import context_from_question, question_for_context
from preferences.imports import altdata_import
from preferences.models import CandidatePair, PairSource, Side

pytestmark = pytest.mark.django_db


def _import_all(project, sample_files):
    reports = [
        altdata_import(paths=[path], images_dir=images, project=project)
        for path, images in sample_files
    ]
    return reports


def test_all_four_sample_files_import_with_zero_rejects(project, sample_files):
    reports = _import_all(project, sample_files)
    assert [r.rejected for r in reports] == [0, 0, 0, 0], [r.errors for r in reports]
    assert [r.imported for r in reports] == [10, 10, 10, 10]
    assert Post.objects.filter(project=project).count() == 40
    # Train records carry chosen/rejected: one pair each, chosen on side A, preference imported.
    pairs = CandidatePair.objects.filter(post__project=project)
    assert pairs.count() == 20
    assert set(pairs.values_list("source", "known_preference")) == {(PairSource.IMPORT, Side.A)}
    # Test records keep their single reference alt-text.
    assert AltText.objects.filter(origin=AltTextOrigin.REFERENCE).count() == 20
    assert Post.objects.filter(split=Split.TEST).count() == 20
    assert Post.objects.filter(platform=Platform.TWITTER).count() == 20
    assert Post.objects.filter(platform=Platform.PINTEREST).count() == 20


def test_pairs_hold_the_texts_of_the_records(project, sample_files):
    path, images = sample_files[0]
    altdata_import(paths=[path], images_dir=images, project=project)
    record = json.loads(path.read_text())[0]
    inner = json.loads(record["text"])
    pair = CandidatePair.objects.get(alt_a__text=inner["chosen"])
    assert pair.alt_b.text == inner["rejected"]
    assert pair.post.context == context_from_question(inner["question"])
    assert pair.post.external_id == str(record["idx"])
    stored = Path(pair.post.image.file.path)
    assert stored.read_bytes() == (images / record["image"]["path"]).read_bytes()


def test_reimport_adds_nothing(project, sample_files):
    _import_all(project, sample_files)
    counts = (
        Post.objects.count(),
        AltText.objects.count(),
        CandidatePair.objects.count(),
        Image.objects.count(),
    )
    again = _import_all(project, sample_files)
    assert [r.imported for r in again] == [0, 0, 0, 0]
    assert [r.duplicates for r in again] == [10, 10, 10, 10]
    assert (
        Post.objects.count(),
        AltText.objects.count(),
        CandidatePair.objects.count(),
        Image.objects.count(),
    ) == counts


def test_same_image_used_twice_is_stored_once(project, tmp_path, make_png):
    (tmp_path / "a.png").write_bytes(make_png())
    (tmp_path / "copy-of-a.png").write_bytes(make_png())
    lines = [
        {"image": "a.png", "context": "first post", "alt_text": "a red square"},
        {"image": "copy-of-a.png", "context": "second post", "alt_text": "a red square"},
    ]
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 2
    assert Post.objects.count() == 2
    assert Image.objects.count() == 1
    files = list(Path(Image.objects.get().file.path).parent.iterdir())
    assert len([f for f in files if not f.name.startswith(".")]) == 1


@pytest.mark.parametrize(
    "question, context",
    [
        (
            "Given an image and context, generate alt-text for the image.Context:\nHello\nworld",
            "Hello\nworld",
        ),
        (
            "Given an image and context, generate alt-text for the image.\nContext:\nHi there",
            "Hi there",
        ),
        (
            "given an image and context, generate alt-text for the image.\ncontext:\nmy  pin ",
            "my  pin ",
        ),
        ("Given an image and context, generate alt-text for the image.\nContext:\n", ""),
    ],
)
def test_context_is_parsed_from_every_prompt_variant(question, context):
    assert context_from_question(question) == context


@pytest.mark.parametrize("platform", ["twitter", "pinterest", "other"])
def test_question_round_trips(platform):
    question = question_for_context("Some context.\nLine two", platform=platform)
    assert context_from_question(question) == "Some context.\nLine two"
    assert question.startswith("given") == (platform == "pinterest")


def test_command_prints_json_summary(project, sample_files, capsys):
    path, images = sample_files[1]
    call_command(
        "import_altdata",
        str(path),
        "--images-dir",
        str(images),
        "--project",
        project.name,
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert out == {"imported": 10, "duplicates": 0, "rejected": 0, "errors": [], "notes": []}


def test_command_creates_missing_project(db, sample_files, capsys):
    path, images = sample_files[2]
    call_command(
        "import_altdata", str(path), "--images-dir", str(images), "--project", "Brand new", "--json"
    )
    assert Post.objects.filter(project__name="Brand new").count() == 10
    # A created project has the default facet set.
    from annotate.models import Project

    assert list(Project.objects.get(name="Brand new").facets.values_list("key", flat=True)) == [
        "overall",
        "faithful",
        "context",
        "concise",
        "fluent",
    ]


def test_annotate_stores_the_raw_material_and_preferences_makes_the_pairs(project, sample_files):
    """The importer of the bottom app knows nothing of pairs: without a sink it stores posts and
    alt-texts only; importing the same files through preferences then adds just the pairs."""
    from annotate.importers.service import records_import

    raw = [
        records_import(paths=[path], images_dir=images, project=project, pairs=None)
        for path, images in sample_files
    ]
    assert [r.imported for r in raw] == [10, 10, 10, 10]
    assert not CandidatePair.objects.exists()
    assert AltText.objects.filter(origin=AltTextOrigin.IMPORTED_CHOSEN).count() == 20
    again = _import_all(project, sample_files)
    # Train records now create their pair (imported); test records add nothing (duplicates).
    assert sorted((r.imported, r.duplicates) for r in again) == [(0, 10), (0, 10), (10, 0), (10, 0)]
    assert CandidatePair.objects.filter(post__project=project).count() == 20
