"""The export-format registry: a new format is one registered class, chosen like the built-in
ones, written in the same walk over the rows and listed (checksummed) in the manifest."""

import hashlib

import pytest

from core.errors import ApplicationError
from snapshots import writers
from snapshots.services import snapshot_formats_parse

pytestmark = pytest.mark.django_db


@pytest.fixture
def tsv_format(monkeypatch):
    """A tab-separated PAlt format, registered for this test only."""
    monkeypatch.setattr(writers, "EXPORT_FORMATS", dict(writers.EXPORT_FORMATS))
    monkeypatch.setattr("snapshots.services.EXPORT_FORMATS", writers.EXPORT_FORMATS)

    @writers.export_format("tsv")
    class TsvFormat(writers.ExportFormat):
        files = {"palt": ("palt.tsv",)}

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.writer = self.writers["palt.tsv"] = writers.JsonLinesWriter(
                self.out_dir / "palt.tsv"
            )

        def add(self, item):
            self.writer.write(f"{item.idx}\t{item.row.chosen}\t{item.row.rejected}\n")
            self.writer.records += 1

    return TsvFormat


def test_a_registered_format_is_exported_and_checksummed(labelled, export, tsv_format):
    assert snapshot_formats_parse(["tsv"]) == ["tsv"]
    assert snapshot_formats_parse("all")[-1] == "tsv"
    folder, manifest = export(formats=("mcmdpo", "tsv"), project=labelled.project)

    lines = (folder / "palt.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == manifest["counts"]["records"] == manifest["files"]["palt.tsv"]["records"]
    assert lines[0].startswith("0\t")
    digest = hashlib.sha256((folder / "palt.tsv").read_bytes()).hexdigest()
    assert manifest["files"]["palt.tsv"]["sha256"] == digest
    assert "palt.json" in manifest["files"]  # the built-in format alongside it

    # A kind the format does not write: nothing from it, the rest as usual.
    folder, manifest = export(kind="talt", formats=("mcmdpo", "tsv"), project=labelled.project)
    assert not (folder / "palt.tsv").exists() and "talt.json" in manifest["files"]


def test_unknown_formats_are_refused_by_name():
    with pytest.raises(ApplicationError, match='Unknown format "csv"; use mcmdpo, jsonl, parquet'):
        snapshot_formats_parse(["csv"])


def test_the_manifest_names_the_consensus_the_labels_come_from(labelled, export):
    from preferences.consensus.models import Consensus

    _, manifest = export(project=labelled.project)
    claim = manifest["consensus_method"]
    assert "majority" not in claim and claim.startswith("blended consensus")
    # Every method a stored consensus label can carry is named in the claim.
    for method in Consensus.objects.values_list("method", flat=True).distinct():
        assert {"weighted": "weighted vote", "adjudication": "adjudication"}.get(
            method, method.replace("dawid-skene", "Dawid-Skene")
        ) in claim
