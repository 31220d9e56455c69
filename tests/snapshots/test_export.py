"""Exports: the reference trainer's reading of PAlt, selection rules, TAlt/test, byte identity."""

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

from core.prompts import question_for_context
from preferences.consensus.models import Consensus

SAMPLE_KEYS = ["ds_name", "image", "origin_dataset", "origin_split", "idx", "image_path", "text"]


def reference_trainer_load(path: Path) -> list[dict]:
    """What the MCM-DPO reference code does with a train file: json.load the array, json.loads
    each `text`, Image.open each `image.path` as given (no base folder)."""
    rows = []
    for item in json.load(path.open(encoding="utf-8")):
        inner = json.loads(item["text"])
        with PILImage.open(item["image"]["path"]) as img:
            img.convert("RGB").load()
        rows.append(
            {
                "question": inner["question"],
                "chosen": inner["chosen"],
                "rejected": inner["rejected"],
                **item,
            }
        )
    return rows


def test_palt_is_read_by_the_reference_trainer(labelled, export, sample_files):
    folder, manifest = export(project=labelled.project)
    path = folder / "palt.json"
    rows = reference_trainer_load(path)

    sample = json.load(sample_files[0][0].open())
    for item in json.load(path.open()):
        assert list(item) == SAMPLE_KEYS == list(sample[0])
        assert set(json.loads(item["text"])) == {"question", "chosen", "rejected"}
        assert (
            item["image_path"] == item["image"]["path"] and Path(item["image_path"]).is_absolute()
        )
        assert item["origin_split"] == "{}" and isinstance(item["idx"], int)
    # Laid out exactly like the reference files (json.dumps, indent 2, UTF-8 as is).
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False)

    # Selection: 20 imported + 1 correction + majority A + adjudicated B; ties, both-bad, split
    # votes and LLM-only labels stay out.
    assert len(rows) == 23 == manifest["counts"]["records"]
    # The blended consensus calls a 1–1 split between A and B a tie; LLM-only is unlabelled.
    assert manifest["counts"]["skipped"] == {"both-bad": 1, "tie": 2, "unlabelled": 1}
    by_chosen = {r["chosen"]: r for r in rows}
    assert "model says majority A" in by_chosen
    assert by_chosen["model says adjudicated B"]["rejected"] == "model says adjudicated A"
    left_out = ("model says tie", "model says bothbad", "model says llmonly", "model says split")
    assert not any(r["chosen"].startswith(left_out) for r in rows)
    fixed = [r for r in rows if r["chosen"].endswith("(fixed)")]
    assert len(fixed) == 1 and fixed[0]["rejected"] + " (fixed)" == fixed[0]["chosen"]

    # The question is the platform's prompt around the post text; Pinterest is lower-case.
    pins = [r for r in rows if r["ds_name"] == "pinterest_data"]
    assert len(pins) == 10 and all(
        r["question"].startswith("given an image and context") for r in pins
    )
    twitter = [r for r in rows if r["ds_name"] == "twitter_data"]
    assert all(
        r["question"].startswith(
            "Given an image and context, generate alt-text for the image.\nContext:\n"
        )
        for r in twitter
    )
    assert {r["origin_dataset"] for r in pins} == {"pinterest"}


def test_filters_llm_only_confidence_and_sources(labelled, export):
    _, with_llm = export(project=labelled.project, include_llm_only=True)
    assert with_llm["counts"]["records"] == 24
    # Confidence is the blended consensus's (preferences.consensus): 3 humans A, A, B and the
    # LLM's A give A with a probability below 1; the threshold cuts exactly there.
    confidence = Consensus.objects.get(
        pair=labelled.pairs["majority_a"], facet__key="overall"
    ).confidence
    assert 0.5 < confidence < 1
    _, confident = export(project=labelled.project, min_confidence=confidence + 1e-4)
    assert confident["counts"]["skipped"]["low-confidence"] == 1
    _, lenient = export(project=labelled.project, min_confidence=confidence - 1e-4)
    assert "low-confidence" not in lenient["counts"]["skipped"]
    _, judged_only = export(project=labelled.project, include_imported=False)
    assert judged_only["counts"]["records"] == 3
    _, twitter = export(project=labelled.project, platforms=["twitter"])
    assert twitter["counts"]["records"] == 13


def test_jsonl_and_parquet_carry_trl_columns_and_facet_labels(labelled, export):
    import datasets

    folder, manifest = export(project=labelled.project, formats=("jsonl", "parquet"))
    lines = [json.loads(x) for x in (folder / "palt.jsonl").read_text().splitlines()]
    assert len(lines) == 23
    majority = next(r for r in lines if r["pair_id"] == labelled.pairs["majority_a"].pk)
    consensus = Consensus.objects.get(pair=labelled.pairs["majority_a"], facet__key="overall")
    assert majority["labels"]["overall"] == {
        "label": "A",
        "confidence": round(consensus.confidence, 6),
        "votes": 4,  # three humans and the LLM
        "method": "weighted",
    }
    assert majority["prompt"][0]["content"][0]["type"] == "image"
    assert majority["chosen"][0]["content"][0]["text"] == "model says majority A"

    ds = datasets.load_dataset("parquet", data_files=str(folder / "palt.parquet"), split="train")
    assert {"images", "prompt", "chosen", "rejected", "overall_label", "overall_confidence"} <= set(
        ds.column_names
    )
    row = ds[[r["pair_id"] for r in lines].index(labelled.pairs["adjudicated_b"].pk)]
    assert isinstance(row["images"][0], PILImage.Image)
    assert row["overall_label"] == "B" and row["overall_confidence"] == 1.0
    assert row["chosen"][0]["content"][0]["text"] == "model says adjudicated B"
    assert manifest["files"]["palt.parquet"]["records"] == 23


def test_talt_picks_the_best_alt_text_per_post(labelled, export):
    folder, manifest = export(kind="talt", formats=("mcmdpo", "jsonl"), project=labelled.project)
    rows = [json.loads(x) for x in (folder / "talt.jsonl").read_text().splitlines()]
    assert len(rows) == 20  # one per train post
    by_post = {r["post_id"]: r for r in rows}
    pairs = labelled.pairs
    assert by_post[pairs["adjudicated_b"].post_id]["tier"] == "adjudicated"
    assert (
        by_post[pairs["adjudicated_b"].post_id]["completion"][0]["content"][0]["text"]
        == "model says adjudicated B"
    )
    assert by_post[pairs["correction"].post_id]["tier"] == "human-corrected"
    assert by_post[pairs["tie"].post_id]["tier"] == "consensus-winner"  # its imported pair's chosen
    mcmdpo = json.load((folder / "talt.json").open())
    assert set(json.loads(mcmdpo[0]["text"])) == {"question", "chosen"}
    llava = json.load((folder / "talt_llava.json").open())
    assert llava[0]["conversations"][0]["value"].startswith("<image>\n")
    assert llava[0]["conversations"][1]["from"] == "gpt"


def test_test_split_is_jsonl_like_the_samples(labelled, export):
    folder, manifest = export(kind="test", project=labelled.project, platforms=["twitter"])
    rows = [json.loads(x) for x in (folder / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(
        list(r) == ["image_path", "question", "chosen", "idx"] for r in rows
    )
    assert {r["question"] for r in rows} == {
        question_for_context(p.context, platform="twitter")
        for p in labelled.project.posts.filter(split="test", platform="twitter")
    }
    assert manifest["counts"]["tier:reference"] == 10


def test_same_selection_gives_byte_identical_folders(labelled, export):
    from snapshots.services import snapshot_verify

    kwargs = {"project": labelled.project, "image_paths": "relative"}
    first, m1 = export(formats=("mcmdpo", "jsonl", "parquet"), **kwargs)
    second, m2 = export(formats=("mcmdpo", "jsonl", "parquet"), **kwargs)

    def contents(folder):
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    a, b = contents(first), contents(second)
    assert a == b
    assert {"palt.json", "palt.jsonl", "palt.parquet", "manifest.json"} <= set(a)
    assert sum(name.startswith("images/") for name in a) == 20
    assert snapshot_verify(folder=first) == []
    assert set(m1["files"]) == set(a) - {"manifest.json"}
    assert m1["code_version"] and m1["agreement"]["overall"]["judged_pairs"] == 6

    (first / "palt.jsonl").write_text("tampered\n")
    assert snapshot_verify(folder=first) == ["palt.jsonl"]


def test_bad_selections_are_refused_with_a_message(labelled, export):
    from core.errors import ApplicationError

    for kwargs, message in [
        ({"kind": "sft"}, "Unknown snapshot kind"),
        ({"facets": ["nonsense"]}, "Unknown facet"),
        ({"platforms": ["myspace"]}, "Unknown platform"),
        ({"min_confidence": 1.5}, "between 0 and 1"),
        ({"min_confidence": "lots"}, "between 0 and 1"),
        ({"image_paths": "somewhere"}, "absolute"),
    ]:
        with pytest.raises(ApplicationError, match=message):
            export(**{"kind": "palt", "project": labelled.project, **kwargs})


def test_export_command(labelled, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command(
        "export_snapshot",
        "--kind",
        "palt",
        "--out",
        str(tmp_path / "cli"),
        "--project",
        labelled.project.name,
        "--format",
        "all",
        "--json",
        stdout=out,
    )
    manifest = json.loads(out.getvalue())
    assert manifest["counts"]["records"] == 23 and "palt.parquet" in manifest["files"]
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_snapshot", "--kind", "palt", "--out", str(tmp_path / "cli"))
    with pytest.raises(CommandError, match="Unknown facet"):
        call_command(
            "export_snapshot", "--kind", "palt", "--out", str(tmp_path / "x"), "--facet", "nope"
        )


def test_hand_encoders_match_json_dumps():
    from snapshots.writers import llava_encoded, mcmdpo_encoded, mcmdpo_text

    tricky = 'quote " backslash \\ newline \n tab \t emoji 😀 ♡ control \x01 </script>'
    assert mcmdpo_text(tricky, tricky, tricky) == json.dumps(
        {"question": tricky, "chosen": tricky, "rejected": tricky}, ensure_ascii=False
    )
    assert mcmdpo_text(tricky, "c") == json.dumps(
        {"question": tricky, "chosen": "c"}, ensure_ascii=False
    )
    record = {
        "ds_name": "twitter_data",
        "image": {"path": tricky},
        "origin_dataset": "AltTextData",
        "origin_split": "{}",
        "idx": 7,
        "image_path": tricky,
        "text": tricky,
    }
    assert mcmdpo_encoded(
        ds_name="twitter_data", image_path=tricky, origin_dataset="AltTextData", idx=7, text=tricky
    ) == (json.dumps(record, indent=2, ensure_ascii=False).replace("\n", "\n  "))
    llava = {
        "id": "7",
        "image": tricky,
        "conversations": [
            {"from": "human", "value": "<image>\n" + tricky},
            {"from": "gpt", "value": tricky},
        ],
    }
    assert llava_encoded(idx=7, image_path=tricky, question=tricky, answer=tricky) == json.dumps(
        llava, ensure_ascii=False
    )


@pytest.mark.parametrize(
    "formats, image_paths",
    [(("mcmdpo",), "absolute"), (("mcmdpo",), "relative"), (("parquet",), "absolute")],
)
def test_missing_image_file_stops_the_export_with_a_clear_message(
    labelled, export, formats, image_paths
):
    from django.conf import settings

    from core.errors import ApplicationError

    pair = labelled.pairs["correction"]
    (Path(settings.MEDIA_ROOT) / pair.post.image.file.name).unlink()
    with pytest.raises(ApplicationError, match="image file is missing from storage"):
        export(project=labelled.project, formats=formats, image_paths=image_paths)
