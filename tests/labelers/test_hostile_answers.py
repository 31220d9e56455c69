"""Hostile LLM answers, served by the fake Gemini server through the real google-genai SDK and
by the fake OpenAI-compatible server through plain HTTP:
NUL (escaped and raw), lone surrogates, 100,000-deep JSON and 5 MB answers are one failed
attempt of one item; the run goes on, nothing poisonous is stored, messages carry no SQL, and
an item that keeps answering badly is flagged instead of blocking later runs."""

import pytest
from django.db import DataError

from annotate.models import AltText
from preferences.labelers import answers
from preferences.labelers.models import LabelRun, LLMCacheEntry, LLMCall
from preferences.labelers.services import label_run_batch, label_run_start
from preferences.models import Judgement

pytestmark = pytest.mark.django_db

HOSTILE = ["nul", "nul-raw", "surrogate", "deep", "huge"]


def _drain(run):
    while not run.is_finished:
        run = label_run_batch(run_id=run.pk)
    return run


def _clean(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.mark.parametrize("task", ["correct", "judge"])
@pytest.mark.parametrize("behaviour", HOSTILE)
def test_a_hostile_answer_fails_one_item_and_the_run_goes_on(
    judge_on, corpus, settings, task, behaviour
):
    # Both providers' answers pass through the one set of checks (answers.py).
    settings.GEMINI_TIMEOUT_S = settings.OPENAI_TIMEOUT_S = 20  # a 5 MB answer must arrive
    judge_on.script = [behaviour]  # the first request of the run (the first item) is hostile
    # A 5 MB answer is billed as ~1.2M output tokens: a budget that lets the run go on.
    start = label_run_start(project=corpus["project"], task=task, budget_usd=100, enqueue=False)
    run = _drain(start)

    assert start.labeler.provider == judge_on.provider
    assert (run.status, run.done, run.failed) == ("done", 2, 1)
    assert "INSERT" not in run.message and "SELECT" not in run.message
    bad = LLMCall.objects.get(status="failed")
    assert bad.http_status == 200 and bad.error
    assert len(bad.raw_answer) <= answers.MAX_STORED_CHARS + 100 and _clean(bad.raw_answer)
    assert _clean(bad.error) and len(bad.error) <= 600
    # Nothing of the hostile answer became a label or a cache entry.
    for entry in LLMCacheEntry.objects.all():
        assert _clean(str(entry.answer)) and len(str(entry.answer)) < 10_000
    for text in AltText.objects.values_list("text", flat=True):
        assert _clean(text) and len(text) < 1_000
    for rationale in Judgement.objects.values_list("rationale", flat=True):
        assert _clean(rationale) and len(rationale) <= 2 * answers.MAX_RATIONALE_CHARS


def test_a_poisonous_item_is_retried_then_flagged_and_never_blocks_the_project(
    gemini_on, corpus, settings
):
    settings.GEMINI_ITEM_MAX_BAD_ANSWERS = 3
    project = corpus["project"]
    first = corpus["pairs"][0]
    gemini_on.script = ["deep"]
    run = _drain(label_run_start(project=project, task="judge", enqueue=False))
    assert (run.done, run.failed) == (2, 1)

    # Later runs retry the item (it may answer well next time) ...
    for _ in (2, 3):
        gemini_on.script = ["nul"]
        run = _drain(label_run_start(project=project, task="judge", enqueue=False))
        assert (run.total, run.done, run.failed) == (1, 0, 1)
    assert f"Item {first.pk} is flagged after 3 bad answers" in run.message
    # ... until it is flagged: the next run skips it instead of failing on it again.
    run = label_run_start(project=project, task="judge", enqueue=False)
    assert run.total == 0 and run.status == "done"
    assert not Judgement.objects.filter(pair=first).exists()


def test_a_database_error_while_storing_is_one_failed_item_without_sql(
    gemini_on, corpus, monkeypatch
):
    from preferences.labelers import services

    real = services.LLMVerdict.objects.create
    calls = []

    def explode_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise DataError('INSERT INTO "labelers_llmverdict" VALUES (...) failed')
        return real(**kwargs)

    monkeypatch.setattr(services.LLMVerdict.objects, "create", explode_once)
    run = _drain(label_run_start(project=corpus["project"], task="judge", enqueue=False))
    assert (run.status, run.done, run.failed) == ("done", 2, 1)
    run.refresh_from_db()
    assert "INSERT" not in run.message and "DataError" in run.message
    # The failed item's judgement rolled back with it; the other two items are whole.
    assert Judgement.objects.values("pair").distinct().count() == 2
    assert LabelRun.objects.get().failed == 1


def test_answer_checks_refuse_depth_and_size_without_recursing():
    deep = '{"facets": ' + "[" * 20_000 + "]" * 20_000 + "}"
    with pytest.raises(answers.AnswerInvalid, match="deeper than"):
        answers.judgement_parse(deep, facet_keys=["x"])
    with pytest.raises(answers.AnswerInvalid, match="limit is"):
        answers.correction_parse('{"corrected": "' + "a" * 70_000 + '"}', original="a")
    # Brackets inside strings are text, not nesting.
    text = '{"corrected": "' + "[" * 50 + '", "changed": true}'
    assert answers.correction_parse(text, original="[")["corrected"] == "[" * 50
