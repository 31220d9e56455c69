"""Reading the reference snapshot format and trl's jsonl/parquet format; question parsing."""

import json

import pytest

from modeltrain.mcmdpo.formats import (
    FormatError,
    format_question,
    parse_question,
    question_header,
    read_records,
    record_files,
)

TWITTER = "Given an image and context, generate alt-text for the image.Context:\nWho got the NBA off?\nline two"
NEWLINE = (
    "Given an image and context, generate alt-text for the image.\nContext:\nA tweet, with: colons."
)
PINTEREST = "given an image and context, generate alt-text for the image.\ncontext:\nmy favorite pantry meal"


@pytest.mark.parametrize(
    ("question", "context"),
    [
        (TWITTER, "Who got the NBA off?\nline two"),
        (NEWLINE, "A tweet, with: colons."),
        (PINTEREST, "my favorite pantry meal"),
        ("<image>\n" + NEWLINE, "A tweet, with: colons."),
    ],
)
def test_parse_question(question, context):
    assert parse_question(question) == context


def test_a_question_without_a_context_line_is_refused():
    # One parser (core.prompts) for the importer and this reader: no marker, no context.
    with pytest.raises(ValueError, match='no "Context:" line'):
        parse_question("just a post, no marker")


def test_header_round_trip_keeps_the_instruction_and_casing():
    assert format_question(parse_question(PINTEREST), question_header(PINTEREST)) == PINTEREST
    assert format_question(parse_question(TWITTER), question_header(TWITTER)) == TWITTER
    assert question_header(PINTEREST).endswith("context:\n")


def test_reads_the_reference_sample(sample_dir):
    records = read_records(sample_dir)
    # 10 pinterest + 10 twitter train records have chosen and rejected; the test splits do not.
    assert len(records) == 20
    assert [r.index for r in records] == list(range(20))
    pinterest = next(r for r in records if r.context.startswith("my favorite pantry meal"))
    assert pinterest.chosen == "bowl filled with korean tuna rice bowl, or chamchi deopbap"
    assert pinterest.rejected == "the ingredients for this korean rice bowl are shown"
    assert pinterest.image_path.endswith("pinterest_train/5e99e681c9f14abfec9fe022c21b9d7b.jpeg")
    twitter = next(r for r in records if r.context.startswith("Who y'all got"))
    assert twitter.chosen.startswith("Smiling basketball player")
    assert twitter.question.startswith(
        "Given an image and context, generate alt-text for the image.Context:\n"
    )
    for record in records:
        assert "Context:" not in record.context and "context:" not in record.context[:9]


def test_test_split_is_readable_without_rejected(sample_dir):
    records = read_records(sample_dir / "twitter" / "twitter_test.json", require_rejected=False)
    assert len(records) == 10 and all(r.rejected is None for r in records)
    assert all(r.image_path.endswith((".jpg", ".png")) for r in records)


def test_reads_trl_jsonl_and_parquet(tmp_path, make_image):
    image = make_image(tmp_path / "a.png")
    rows = [
        {
            "images": [str(image)],
            "prompt": "<image>" + NEWLINE,
            "chosen": "good",
            "rejected": "bad",
        },
        {"images": ["a.png"], "prompt": PINTEREST, "chosen": "nice", "rejected": "poor"},
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    records = read_records(tmp_path / "train.jsonl")
    assert [r.context for r in records] == ["A tweet, with: colons.", "my favorite pantry meal"]
    assert records[1].image_path == str(image)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    from_parquet = read_records(tmp_path / "train.parquet")
    assert [(r.context, r.chosen, r.rejected) for r in from_parquet] == [
        (r.context, r.chosen, r.rejected) for r in records
    ]


def test_missing_image_is_a_clear_error(tmp_path):
    (tmp_path / "x.jsonl").write_text(
        json.dumps({"image_path": "nope.png", "question": NEWLINE, "chosen": "a"})
    )
    with pytest.raises(FormatError, match="nope.png"):
        read_records(tmp_path / "x.jsonl", require_rejected=False)


def _trl_rows(image):
    return [
        {"images": [str(image)], "prompt": NEWLINE, "chosen": "good", "rejected": "bad"},
        {"images": [str(image)], "prompt": PINTEREST, "chosen": "nice", "rejected": "poor"},
    ]


def test_the_sample_folder_reads_each_file_once(sample_dir):
    # Same format in several files (one per platform/split): all are read, in path order.
    files = record_files(sample_dir)
    assert [f.relative_to(sample_dir).as_posix() for f in files] == [
        "pinterest/pinterest_test.json",
        "pinterest/pinterest_train.json",
        "twitter/twitter_test.json",
        "twitter/twitter_train.json",
    ]


def test_one_dataset_in_several_formats_is_read_once(tmp_path, make_image):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _trl_rows(make_image(tmp_path / "a.png"))
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    assert record_files(tmp_path) == [tmp_path / "train.jsonl"]
    assert [r.chosen for r in read_records(tmp_path)] == ["good", "nice"]


def test_different_datasets_in_different_formats_are_refused(tmp_path, make_image):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _trl_rows(make_image(tmp_path / "a.png"))
    (tmp_path / "twitter.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pinterest.parquet")
    with pytest.raises(FormatError, match="several formats.*pinterest.parquet.*twitter.jsonl"):
        read_records(tmp_path)


def test_a_manifest_names_the_file(tmp_path, make_image):
    rows = _trl_rows(make_image(tmp_path / "a.png"))
    for name in ("palt.jsonl", "other.jsonl"):  # other.jsonl is not the manifest's
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows))
    manifest = {"altpref_snapshot": 1, "kind": "palt", "files": {"palt.jsonl": {}, "a.png": {}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert record_files(tmp_path) == [tmp_path / "palt.jsonl"]
    assert len(read_records(tmp_path)) == 2
    manifest["files"] = {"a.png": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="lists no palt record file"):
        read_records(tmp_path)


@pytest.fixture
def make_image():
    from PIL import Image

    def make(path):
        Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
        return path

    return make
