"""A training round reads an exported snapshot once: one data file, every record once, images found.

Real exports through `snapshot_export`, in every combination of formats, read back with the
training library's `read_records` (what `run_training` calls on a snapshot folder).
"""

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from modeltrain.mcmdpo.formats import read_records, record_files

FORMATS = ("mcmdpo", "jsonl", "parquet")
COMBINATIONS = [
    combo for n in range(1, len(FORMATS) + 1) for combo in itertools.combinations(FORMATS, n)
]


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _expected(folder: Path, name: str) -> list[tuple]:
    """(question, chosen, rejected, image sha256) per record of a reference-format file, read the
    way the MCM-DPO reference trainer reads it (json.load, json.loads of `text`, the path as is)."""
    rows = []
    for item in json.loads((folder / name).read_text(encoding="utf-8")):
        inner = json.loads(item["text"])
        image = Path(item["image"]["path"])
        image = image if image.is_absolute() else folder / image
        rows.append((inner["question"], inner["chosen"], inner.get("rejected"), _sha(image)))
    return rows


def _read(records) -> list[tuple]:
    assert all(Path(r.image_path).is_file() for r in records)
    return [(r.question, r.chosen, r.rejected, _sha(r.image_path)) for r in records]


@pytest.mark.parametrize("formats", COMBINATIONS, ids="+".join)
def test_every_record_once_with_its_image(labelled, export, formats, tmp_path):
    cache = tmp_path / "image-cache"
    reference, _ = export(project=labelled.project)
    expected = _expected(reference, "palt.json")
    assert len(expected) == 23 and len(set(expected)) == 23

    for image_paths in ("absolute", "relative"):
        folder, manifest = export(
            project=labelled.project, formats=formats, image_paths=image_paths
        )
        assert len(record_files(folder)) == 1, image_paths
        records = read_records(folder, image_cache=cache)
        assert _read(records) == expected, (formats, image_paths)
        assert len(records) == manifest["counts"]["records"]


@pytest.mark.parametrize("formats", COMBINATIONS, ids="+".join)
def test_talt_and_test_snapshots_read_once(labelled, export, formats, tmp_path):
    cache = tmp_path / "image-cache"
    reference, _ = export(kind="talt", project=labelled.project)
    expected = _expected(reference, "talt.json")

    folder, manifest = export(kind="talt", project=labelled.project, formats=formats)
    records = read_records(folder, require_rejected=False, image_cache=cache)
    assert _read(records) == expected
    assert len(records) == manifest["counts"]["records"] == 20

    folder, manifest = export(kind="test", project=labelled.project, formats=formats)
    records = read_records(folder, require_rejected=False, image_cache=cache)
    assert len(records) == manifest["counts"]["records"] > 0
    assert len({(r.question, r.chosen) for r in records}) == len(records)
    assert all(Path(r.image_path).is_file() and r.rejected is None for r in records)


def test_parquet_alone_reads_its_embedded_images(labelled, export, tmp_path):
    """A Parquet snapshot copied to another machine (no media folder) still trains: the image
    bytes in the file are what the records point at."""
    import shutil

    from django.conf import settings

    reference, _ = export(project=labelled.project)
    expected = _expected(reference, "palt.json")
    folder, _ = export(project=labelled.project, formats=("parquet",))
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder, moved)
    shutil.rmtree(settings.MEDIA_ROOT)
    records = read_records(moved, image_cache=tmp_path / "cache")
    assert _read(records) == expected
    assert all(Path(r.image_path).parent == tmp_path / "cache" for r in records)
    # The snapshot folder is left as exported: nothing written beside its manifest's files.
    assert sorted(p.name for p in moved.iterdir()) == ["manifest.json", "palt.parquet"]
