"""Hostile import files: paths that leave --images-dir (../, absolute, symlinks) are refused
before anything is opened; a FIFO does not hang the import; NUL, lone surrogates, wrong types
and 100,000-deep nesting in any field are per-record rejections in the JSON report, good records
in the same batch are kept, no image file is left without its row, and no traceback."""

import json
import os
import threading

import pytest
from django.conf import settings
from django.core.management import call_command

from annotate.importers import images as images_module
from annotate.models import Image, Post
from preferences.imports import altdata_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path, make_png):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        (images / f"ok{i}.png").write_bytes(make_png((10 * i, 20, 30)))
    return images


def _good(i: int, **extra) -> dict:
    return {"id": f"g{i}", "image": f"ok{i}.png", "context": f"post {i}", "alt_text": "a square"}


def _write(tmp_path, lines: list[str], name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import_json(path, folder, capsys, *extra) -> dict:
    with pytest.raises(SystemExit):  # exit status 1: something was rejected
        call_command("import_altdata", str(path), "--images-dir", str(folder), "--json", *extra)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _stored_files() -> set[str]:
    root = settings.MEDIA_ROOT
    return {
        os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(os.path.join(root, "images"))
        for f in files
    }


def test_paths_leaving_the_images_folder_are_refused_before_any_open(
    project, tmp_path, folder, make_png, monkeypatch
):
    outside = tmp_path / "secret.png"
    outside.write_bytes(make_png((1, 2, 3)))
    (folder / "link.png").symlink_to(outside)
    (folder / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (folder / "sub" / "up").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "x.png").write_bytes(make_png((9, 9, 9)))
    opened = []
    real_open = os.open
    monkeypatch.setattr(
        images_module.os, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k)
    )
    refs = ["../secret.png", str(outside), "/etc/shadow", "link.png", "sub/up/x.png", "ok0.png"]
    path = _write(
        tmp_path,
        [
            json.dumps({"image": ref, "context": f"c{i}", "alt_text": "x"})
            for i, ref in enumerate(refs)
        ],
    )
    report = altdata_import(paths=[path], project=project, images_dir=folder)
    assert (report.imported, report.rejected) == (1, 5)
    assert all("outside the images folder" in e["reason"] for e in report.errors)
    assert opened == [str(folder / "ok0.png")]  # nothing outside was ever opened


def test_an_absolute_path_inside_the_images_folder_is_accepted(project, tmp_path, folder):
    path = _write(tmp_path, [json.dumps({**_good(0), "image": str(folder / "ok0.png")})])
    report = altdata_import(paths=[path], project=project, images_dir=folder)
    assert (report.imported, report.rejected) == (1, 0)


def test_a_fifo_in_the_images_folder_does_not_hang_the_import(project, tmp_path, folder):
    os.mkfifo(folder / "pipe.png")
    path = _write(tmp_path, [json.dumps({**_good(9), "image": "pipe.png"}), json.dumps(_good(1))])
    hung = []

    def unblock():  # a watchdog: if the import sits in open(), give it a writer and say so
        hung.append(True)
        with open(folder / "pipe.png", "wb"):
            pass

    watchdog = threading.Timer(15, unblock)
    watchdog.start()
    try:
        report = altdata_import(paths=[path], project=project, images_dir=folder)
    finally:
        watchdog.cancel()
    assert not hung, "the import hung on a FIFO"
    assert (report.imported, report.rejected) == (1, 1)
    assert "not a regular file" in report.errors[0]["reason"]


HOSTILE = [
    ('{"id": "bad\\u0000id", "image": "ok1.png", "context": "c", "alt_text": "x"}', '"id"'),
    ('{"id": "bad\\ud800", "image": "ok1.png", "context": "c", "alt_text": "x"}', '"id"'),
    ('{"id": ["x"], "image": "ok1.png", "context": "c", "alt_text": "x"}', '"id"'),
    ('{"image": "ok1.png", "context": "c", "alt_text": "x", "platform": ["twitter"]}', "platform"),
    ('{"image": "ok1.png", "context": "c", "alt_text": "x", "split": {"a": 1}}', "split"),
    ('{"image": "ok1.png", "context": "c\\u0000", "alt_text": "x"}', "NUL"),
    (
        '{"image": "ok1.png", "context": "c", "alt_text": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "too deeply",
    ),
    (
        '{"image": "ok1.png", "ds_name": ["twitter_data"], "idx": 3, "text": '
        '"{\\"question\\": \\"Context:\\\\nhi\\", \\"chosen\\": \\"a\\", \\"rejected\\": \\"b\\"}"}',
        None,
    ),  # a list in ds_name is ignored (provenance), the record itself is fine
    (
        '{"image": "ok1.png", "ds_name": "twitter_data", "origin_dataset": "x\\u0000", "idx": 3, '
        '"question": "Context:\\nhi", "chosen": "a", "rejected": "b"}',
        "origin_dataset",
    ),
    ('{"image": "ok1.png", "idx": 4, "text": "' + "[" * 5000 + "]" * 5000 + '"}', "text"),
]


@pytest.mark.parametrize("line,reason", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_a_hostile_record_is_one_rejection_and_the_batch_is_kept(
    project, tmp_path, folder, capsys, line, reason
):
    path = _write(tmp_path, [json.dumps(_good(0)), line, json.dumps(_good(2))])
    if reason is None:
        call_command("import_altdata", str(path), "--images-dir", str(folder), "--json",
                     "--project", project.name)  # fmt: skip
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["rejected"] == 0 and report["imported"] == 3
        return
    report = _import_json(path, folder, capsys, "--project", project.name)
    assert report["imported"] == 2 and report["rejected"] == 1, report
    (error,) = report["errors"]
    assert error["record"] == 2 and reason in error["reason"], error
    assert "INSERT" not in error["reason"] and "Traceback" not in error["reason"]
    assert Post.objects.count() == 2
    # Every stored image file has its row: nothing orphaned by the bad record.
    assert _stored_files() == {str(f) for f in Image.objects.values_list("file", flat=True)}


def test_a_deep_record_in_a_json_array_is_skipped_and_reading_goes_on(project, tmp_path, folder):
    deep = '{"image": "ok1.png", "context": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "data.json"
    path.write_text("[" + json.dumps(_good(0)) + "," + deep + "," + json.dumps(_good(2)) + "]")
    report = altdata_import(paths=[path], project=project, images_dir=folder)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.errors[0]["record"] == 2 and "too deeply" in report.errors[0]["reason"]


def test_a_database_refusal_keeps_the_good_records_and_leaves_no_orphan_file(
    project, tmp_path, folder, monkeypatch
):
    """Whatever slips past the checks: the chunk is retried record by record."""
    from annotate.importers import service

    real = service._Importer._write_rows

    def refuse_g1(self, chunk):
        if any(item.record.external_id == "g1" for item in chunk):
            raise service.DatabaseError('INSERT INTO "annotate_post" ... failed')
        return real(self, chunk)

    monkeypatch.setattr(service._Importer, "_write_rows", refuse_g1)
    path = _write(tmp_path, [json.dumps(_good(i)) for i in range(3)])
    report = altdata_import(paths=[path], project=project, images_dir=folder)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.errors[0]["record"] == 2
    assert "database refused" in report.errors[0]["reason"]
    assert "INSERT" not in report.errors[0]["reason"]
    assert set(Post.objects.values_list("external_id", flat=True)) == {"g0", "g2"}
    assert _stored_files() == {str(f) for f in Image.objects.values_list("file", flat=True)}


def test_one_id_names_one_post_and_same_content_under_two_ids_is_merged(
    project, tmp_path, folder, capsys
):
    path = _write(
        tmp_path,
        [
            json.dumps(_good(0)),
            json.dumps({**_good(1), "id": "g0"}),  # the id of g0 with another image: refused
            json.dumps({**_good(0), "id": "g7"}),  # g0's image and context under a new id
            json.dumps({**_good(2), "id": "g0", "split": "test"}),  # another split: its own id
        ],
    )
    report = _import_json(path, folder, capsys, "--project", project.name)
    assert (report["imported"], report["duplicates"], report["rejected"]) == (2, 1, 1)
    (error,) = report["errors"]
    assert error["record"] == 2 and "'g0' already names another post" in error["reason"]
    (note,) = report["notes"]
    assert note["record"] == 3 and "merged" in note["note"] and "'g7'" in note["note"]
    post = Post.objects.get(external_id="g0", split="train")
    assert post.provenance["also_ids"] == ["g7"]
    assert Post.objects.filter(external_id="g0").count() == 2  # train and test

    # Across imports the same rules hold, and a re-import adds nothing and no new note.
    again = _write(
        tmp_path,
        [json.dumps({**_good(3), "id": "g0"}), json.dumps({**_good(0), "id": "g7"})],
        "b.jsonl",
    )
    report = _import_json(again, folder, capsys, "--project", project.name)
    assert (report["imported"], report["duplicates"], report["rejected"]) == (0, 1, 1)
    assert report["notes"] == []
