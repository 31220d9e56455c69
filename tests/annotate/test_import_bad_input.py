"""Bad input never corrupts the database: each bad record is reported, good ones are kept."""

import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from PIL import Image as PILImage

from annotate.models import AltText, Image, Post
from preferences.imports import altdata_import
from preferences.models import CandidatePair

pytestmark = pytest.mark.django_db


def _jsonl(tmp_path, records, name="data.jsonl"):
    path = tmp_path / name
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def good(tmp_path, make_png):
    (tmp_path / "good.png").write_bytes(make_png())
    return {
        "image": "good.png",
        "context": "ok post",
        "chosen": "a red square",
        "rejected": "a shape",
    }


def _reasons(report):
    return {e["record"]: e["reason"] for e in report.errors}


def test_file_that_is_not_json_or_csv_is_rejected(project, tmp_path, make_png):
    path = tmp_path / "photo.json"
    path.write_bytes(make_png())
    report = altdata_import(paths=[path], project=project)
    assert report.rejected == 1 and report.imported == 0
    assert "not a JSON array, JSON Lines or CSV" in report.errors[0]["reason"]
    assert Post.objects.count() == 0


def test_records_missing_fields_are_rejected_and_good_ones_kept(project, tmp_path, good):
    path = _jsonl(
        tmp_path,
        [
            good,
            {"image": "good.png", "alt_text": "no context"},
            {"context": "no image", "alt_text": "x"},
            {**good, "context": "other", "chosen": None, "rejected": "only rejected"},
        ],
    )
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 1 and report.rejected == 3
    reasons = _reasons(report)
    assert "context" in reasons[2]
    assert "image" in reasons[3]
    assert "rejected" in reasons[4]
    assert CandidatePair.objects.count() == 1


def test_missing_truncated_and_non_image_files(project, tmp_path, good, make_png):
    full = make_png(size=(64, 64), fmt="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (tmp_path / "notes.png").write_text("this is text, not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    records = [
        {**good, "image": "nowhere.png"},
        {**good, "image": "truncated.jpg", "context": "t"},
        {**good, "image": "notes.png", "context": "n"},
        {**good, "image": "empty.png", "context": "e"},
        {**good, "image": "../outside.png", "context": "o"},
        good,
    ]
    report = altdata_import(paths=[_jsonl(tmp_path, records)], project=project)
    reasons = _reasons(report)
    assert report.imported == 1 and report.rejected == 5
    assert "not found" in reasons[1]
    assert "truncated" in reasons[2]
    assert "not a readable image" in reasons[3]
    assert "empty" in reasons[4]
    assert "outside" in reasons[5]
    assert Image.objects.count() == 1


def test_decompression_bomb_is_refused_without_decoding(project, tmp_path, good, settings):
    settings.ALTPREF = {**settings.ALTPREF, "MAX_IMAGE_PIXELS": 1_000_000}
    buf = io.BytesIO()
    PILImage.new("1", (4000, 4000)).save(buf, format="PNG")  # tiny file, 16 Mpx when decoded
    (tmp_path / "bomb.png").write_bytes(buf.getvalue())
    report = altdata_import(
        paths=[_jsonl(tmp_path, [{**good, "image": "bomb.png"}])], project=project
    )
    assert report.rejected == 1
    assert "decompression bomb" in report.errors[0]["reason"]
    assert Image.objects.count() == 0


def test_absurdly_long_field_is_rejected(project, tmp_path, good):
    records = [{**good, "context": "x" * 1_000_000}, {**good, "chosen": "y" * 100_000}]
    report = altdata_import(paths=[_jsonl(tmp_path, records)], project=project)
    assert report.rejected == 2
    assert all("characters long" in e["reason"] for e in report.errors)
    assert Post.objects.count() == 0


def test_invalid_utf8_rejects_only_that_record(project, tmp_path, good):
    path = tmp_path / "mixed.jsonl"
    bad = (
        json.dumps({**good, "context": "PLACEHOLDER"}).encode().replace(b"PLACEHOLDER", b"caf\xe9")
    )
    path.write_bytes(json.dumps(good).encode() + b"\n" + bad + b"\n")
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 1 and report.rejected == 1
    assert "not valid UTF-8" in _reasons(report)[2]


def test_invalid_utf8_inside_a_json_array(project, tmp_path, good):
    path = tmp_path / "array.json"
    good2 = {**good, "context": "second"}
    body = json.dumps([good, {**good, "context": "PLACEHOLDER"}, good2]).encode()
    path.write_bytes(body.replace(b"PLACEHOLDER", b"\xff\xfe"))
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 2 and report.rejected == 1
    assert "not valid UTF-8" in _reasons(report)[2]


def test_malformed_json_array_keeps_records_before_the_damage(project, tmp_path, good):
    path = tmp_path / "cut.json"
    text = json.dumps([good, {**good, "context": "two"}, {**good, "context": "three"}])
    path.write_text(text[: text.rindex("three")])  # the file was cut off mid-record
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 2
    assert report.rejected == 1 and "malformed JSON" in report.errors[0]["reason"]


def test_mcmdpo_record_whose_text_is_not_json(project, tmp_path, good):
    record = {"image": {"path": "good.png"}, "text": "{not json"}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps([record]))
    report = altdata_import(paths=[path], project=project)
    assert report.rejected == 1 and '"text" is not valid JSON' in report.errors[0]["reason"]


def test_disagreeing_duplicated_fields_are_refused(project, tmp_path, good):
    inner = {
        "question": "Given an image and context, generate alt-text for the image.\nContext:\nhi",
        "chosen": "a",
        "rejected": "b",
    }
    record = {
        "image": {"path": "good.png"},
        **inner,
        "chosen": "different",
        "text": json.dumps(inner),
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps([record]))
    report = altdata_import(paths=[path], project=project)
    assert report.rejected == 1 and "differs" in report.errors[0]["reason"]


def test_strict_imports_nothing_when_anything_is_bad(project, tmp_path, good):
    path = _jsonl(tmp_path, [good, {**good, "image": "nowhere.png", "context": "z"}])
    report = altdata_import(paths=[path], project=project, strict=True)
    assert report.rolled_back and report.imported == 0 and report.rejected == 1
    assert Post.objects.count() == 0 and Image.objects.count() == 0
    # ...and the image file written during the attempt is gone too.
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*.png")]
    assert altdata_import(paths=[path], project=project).imported == 1


def test_command_exit_status_and_json_errors(project, tmp_path, good, capsys):
    path = _jsonl(tmp_path, [good, {"image": "good.png"}])
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_altdata", str(path), "--project", project.name, "--json")
    assert exit_info.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["imported"] == 1 and out["rejected"] == 1
    assert out["errors"] == [
        {"file": "data.jsonl", "record": 2, "reason": 'missing required field "context"'}
    ]


def test_csv_import_with_quoted_newlines_and_a_short_row(project, tmp_path, good):
    path = tmp_path / "data.csv"
    path.write_text(
        'image,context,alt_text\ngood.png,"line one\nline two",a red square\ngood.png,short\n',
        encoding="utf-8",
    )
    report = altdata_import(paths=[path], project=project)
    assert report.imported == 1 and report.rejected == 1
    assert Post.objects.get().context == "line one\nline two"
    assert AltText.objects.get().origin == "user-written"


def test_hostile_text_is_stored_verbatim(project, tmp_path, good):
    hostile = '<script>alert("x")</script> &amp; 🙂\nnew line'
    path = _jsonl(tmp_path, [{**good, "context": hostile, "chosen": hostile}])
    altdata_import(paths=[path], project=project)
    assert Post.objects.get().context == hostile
    assert AltText.objects.filter(text=hostile).exists()


def test_a_file_cut_short_by_an_interrupted_import_is_written_again(project, tmp_path, good):
    from annotate.importers import images

    data = (tmp_path / "good.png").read_bytes()
    stored = Path(settings.MEDIA_ROOT) / images.storage_name(images.sha256(data), "png")
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data[: len(data) // 2])  # what a crash mid-write leaves behind
    report = altdata_import(paths=[_jsonl(tmp_path, [good])], project=project)
    assert report.imported == 1
    assert stored.read_bytes() == data
    assert Path(Image.objects.get().file.path) == stored
