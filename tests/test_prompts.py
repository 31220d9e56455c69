"""One MCM-DPO question parser (core.prompts) for the importer and the training reader: the
same context from the same question on both sides, exactly as it stands, and the same refusal
of a question without a "Context:" line; the training package still imports no Django."""

import json
import subprocess
import sys

import pytest

from core.prompts import PromptError, context_from_question, question_for_context, question_split
from modeltrain.mcmdpo.formats import FormatError, read_records
from tests.conftest import SAMPLE


def _questions(path):
    text = path.read_text(encoding="utf-8")
    rows = (
        json.loads(text)
        if text.lstrip().startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    for row in rows:
        inner = json.loads(row["text"]) if isinstance(row.get("text"), str) else row
        yield inner["question"]


def test_every_sample_question_splits_back_into_itself(sample_files):
    questions = [q for path in sorted(SAMPLE.rglob("*.json")) for q in _questions(path)]
    assert len(questions) == 40
    for question in questions:
        header, context = question_split(question)
        assert header + context == question and context
    # The one context with trailing space (Pinterest test) is kept as it is, so the exported
    # question is the reference question byte for byte.
    padded = [q for q in questions if context_from_question(q) != context_from_question(q).strip()]
    assert len(padded) == 1
    assert question_for_context(context_from_question(padded[0]), platform="pinterest") == padded[0]


def test_the_training_reader_reads_the_contexts_the_importer_stores(sample_files):
    questions = [q for path in sorted(SAMPLE.rglob("*_train.json")) for q in _questions(path)]
    records = read_records(SAMPLE)
    assert sorted(r.context for r in records) == sorted(context_from_question(q) for q in questions)
    assert sorted(r.question for r in records) == sorted(questions)


def test_a_question_without_a_context_line_is_refused_on_both_sides(tmp_path):
    with pytest.raises(PromptError, match='no "Context:" line'):
        context_from_question("Describe this image for a blind reader.")
    path = tmp_path / "palt.json"
    record = {"question": "Describe this image.", "chosen": "A dog.", "rejected": "dog"}
    path.write_text(json.dumps([{"image_path": "x.png", "text": json.dumps(record)}]))
    with pytest.raises(FormatError, match=r'palt.json: record 0: question has no "Context:"'):
        read_records(path)


def test_the_training_package_reads_questions_without_django():
    code = (
        "import sys, modeltrain.mcmdpo.formats;"
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
