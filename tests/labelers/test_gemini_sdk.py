"""The real google-genai SDK against the fake Gemini server: provenance on success, nothing on
failure, retries and their limit, timeouts, the cache, both orders, position flips."""

import base64
import json
from decimal import Decimal

import pytest

from annotate.models import AltText
from preferences.consensus.services import consensus_refresh
from preferences.labelers.models import LLMCacheEntry, LLMCall, LLMCorrection, LLMVerdict
from preferences.labelers.prompts import prompt_load
from preferences.labelers.selectors import flip_rate_by_facet
from preferences.labelers.services import (
    LLMCallFailed,
    alt_text_llm_correct,
    label_context_build,
    pair_llm_judge,
)
from preferences.models import ConsensusPending, Judgement

pytestmark = pytest.mark.django_db


def test_correction_is_stored_with_provenance(gemini_on, corpus):
    alt = corpus["alts"][0]
    ctx = label_context_build(task="correct")
    correction = alt_text_llm_correct(alt_text=alt, ctx=ctx)

    result = correction.result
    assert result.origin == "llm-corrected" and result.parent == alt
    assert result.text == "A dog on the beach 0."
    call = correction.call
    assert call.status == "ok" and call.model_id == "gemini-2.5-flash"
    assert call.prompt_version == prompt_load("correct").version == ctx.labeler.prompt_version
    assert len(call.request_hash) == 64 and call.input_tokens > 0 and call.output_tokens > 0
    assert call.cost_usd > 0 and call.latency_ms >= 0 and '"corrected"' in call.raw_answer

    # What went over the wire: the real SDK's generateContent request.
    (request,) = gemini_on.requests
    assert request["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request["api_key"] == "test-key"
    parts = request["body"]["contents"][0]["parts"]
    inline = next(p["inlineData"] for p in parts if "inlineData" in p)
    with alt.post.image.file.open("rb") as handle:
        # The SDK sends URL-safe base64 without padding.
        data = inline["data"] + "=" * (-len(inline["data"]) % 4)
        assert base64.urlsafe_b64decode(data) == handle.read()
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"
    config = request["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["required"]) == {"corrected", "changed"}
    assert "Post number 0" in parts[-1]["text"]


def test_judging_asks_both_orders_and_stores_llm_judgements(gemini_on, corpus):
    pair = corpus["pairs"][0]
    ctx = label_context_build(task="judge")
    judgements = pair_llm_judge(pair=pair, ctx=ctx)

    assert len(gemini_on.requests) == 2
    first, second = (r["body"]["contents"][0]["parts"][-1]["text"] for r in gemini_on.requests)
    assert "ALT-TEXT A:\n<<<dog>>>" in first and "ALT-TEXT B:\n<<<dog>>>" in second
    facet_keys = set(pair.post.project.facets.values_list("key", flat=True))
    assert {j.facet.key for j in judgements} == facet_keys
    for j in judgements:
        assert j.kind == "llm" and j.rater_llm == ctx.labeler and j.rater_user is None
        assert j.choice == "B"  # the longer alt-text is alt_b, whichever side it was shown on
        assert not j.llm_verdict.flipped and j.llm_verdict.call_ab.shown_order == "AB"
        assert j.llm_verdict.call_ba.shown_order == "BA"
    # The judgements marked their pair; the refresh their commit queues builds its consensus.
    assert ConsensusPending.objects.filter(pair=pair).exists()
    consensus_refresh(project_id=pair.post.project_id)
    assert pair.consensus.count() == len(facet_keys)
    assert ctx.labeler.prompt_version == prompt_load("judge").version


def test_position_dependent_answers_become_low_confidence_ties(gemini_on, corpus):
    gemini_on.default = "biased"  # always "A": the two orders contradict each other
    project = corpus["project"]
    pair_llm_judge(pair=corpus["pairs"][0], ctx=label_context_build(task="judge"))

    judgements = Judgement.objects.filter(pair=corpus["pairs"][0], kind="llm")
    assert judgements and all(j.choice == "tie" for j in judgements)
    assert all(
        v.flipped and (v.choice_ab, v.choice_ba) == ("A", "B") for v in LLMVerdict.objects.all()
    )
    rates = {row["facet"].key: row["flip_rate"] for row in flip_rate_by_facet(project=project)}
    assert set(rates.values()) == {100.0}


@pytest.mark.parametrize("behaviour", ["malformed", "off-schema"])
def test_invalid_answers_are_failed_calls_never_labels(gemini_on, corpus, behaviour):
    gemini_on.default = behaviour
    with pytest.raises(LLMCallFailed):
        alt_text_llm_correct(alt_text=corpus["alts"][0], ctx=label_context_build(task="correct"))
    with pytest.raises(LLMCallFailed):
        pair_llm_judge(pair=corpus["pairs"][0], ctx=label_context_build(task="judge"))

    assert not AltText.objects.filter(origin="llm-corrected").exists()
    assert not LLMCorrection.objects.exists() and not Judgement.objects.exists()
    assert not LLMCacheEntry.objects.exists()
    # An invalid answer is not retried (it is not a transport problem); the judge stops
    # after the first order failed, so 1 + 1 requests.
    assert len(gemini_on.requests) == 2
    calls = LLMCall.objects.all()
    assert all(c.status == "failed" and c.error and c.raw_answer for c in calls)
    assert all(c.input_tokens > 0 for c in calls)  # a bad answer still cost tokens


def test_a_correction_that_adds_content_is_refused(gemini_on, corpus, monkeypatch):
    from preferences.labelers import fake_gemini

    monkeypatch.setattr(
        fake_gemini, "_fix", lambda text: text + " with a red ball and two kids playing"
    )
    with pytest.raises(LLMCallFailed, match="adds content"):
        alt_text_llm_correct(alt_text=corpus["alts"][0], ctx=label_context_build(task="correct"))
    assert not AltText.objects.filter(origin="llm-corrected").exists()


def test_429_and_500_are_retried_then_the_label_is_stored(gemini_on, corpus):
    gemini_on.script = ["429", "500"]
    correction = alt_text_llm_correct(
        alt_text=corpus["alts"][0], ctx=label_context_build(task="correct")
    )
    assert correction.result is not None
    assert [r["behaviour"] for r in gemini_on.requests] == ["429", "500", "ok"]
    calls = list(LLMCall.objects.order_by("id").values_list("attempt", "status", "http_status"))
    assert calls == [(1, "failed", 429), (2, "failed", 500), (3, "ok", 200)]


def test_retries_stop_at_the_limit_and_store_nothing(gemini_on, corpus, settings):
    gemini_on.default = "500"
    with pytest.raises(LLMCallFailed, match="after 3 attempts"):
        alt_text_llm_correct(alt_text=corpus["alts"][0], ctx=label_context_build(task="correct"))
    assert len(gemini_on.requests) == settings.GEMINI_MAX_RETRIES + 1 == 3
    assert not AltText.objects.filter(origin="llm-corrected").exists()
    assert LLMCall.objects.filter(status="failed").count() == 3


def test_a_timeout_is_retried(gemini_on, corpus):
    gemini_on.script = ["slow"]  # 1.0 s answer against a 0.4 s timeout
    correction = alt_text_llm_correct(
        alt_text=corpus["alts"][0], ctx=label_context_build(task="correct")
    )
    assert correction.result is not None
    first = LLMCall.objects.order_by("id").first()
    assert first.status == "failed" and "timeout" in first.error
    assert len(gemini_on.requests) == 2


def test_a_cache_hit_makes_no_http_request(gemini_on, corpus):
    alt = corpus["alts"][0]
    first = alt_text_llm_correct(alt_text=alt, ctx=label_context_build(task="correct"))
    text = first.result.text
    pair = corpus["pairs"][1]
    pair_llm_judge(pair=pair, ctx=label_context_build(task="judge"))
    assert len(gemini_on.requests) == 3
    # Forget the labels; the same inputs must come back from the cache without a request.
    first.result.delete()
    LLMCorrection.objects.all().delete()
    Judgement.objects.filter(pair=pair).delete()

    again = alt_text_llm_correct(alt_text=alt, ctx=label_context_build(task="correct"))
    judged = pair_llm_judge(pair=pair, ctx=label_context_build(task="judge"))
    assert len(gemini_on.requests) == 3
    assert again.from_cache and again.result.text == text
    assert judged and all(j.llm_verdict.from_cache for j in judged)
    assert LLMCacheEntry.objects.get(call=again.call).hits == 1


def test_the_sdk_does_not_retry_on_its_own(gemini_on):
    from preferences.labelers import answers
    from preferences.labelers.base import LabelerError
    from preferences.labelers.gemini import GeminiLabeler

    gemini_on.default = "429"
    impl = GeminiLabeler(api_key="k", model_id="gemini-2.5-flash", base_url=gemini_on.url)
    with pytest.raises(LabelerError) as info:
        impl.generate(
            prompt="x", image_bytes=b"1", mime="image/png", schema=answers.correction_schema()
        )
    assert info.value.transient and info.value.http_status == 429
    assert len(gemini_on.requests) == 1


def test_cost_estimate_uses_the_model_price():
    from preferences.labelers.config import provider_get

    cost = provider_get("gemini").cost
    flash = cost(model_id="gemini-2.5-flash", input_tokens=1_000_000, output_tokens=0)
    pro = cost(model_id="gemini-2.5-pro-preview", input_tokens=0, output_tokens=1_000_000)
    assert flash == Decimal("0.30") and pro == Decimal("10.00")


def test_the_neutral_schema_goes_out_in_geminis_dialect(gemini_on, corpus):
    alt_text_llm_correct(alt_text=corpus["alts"][0], ctx=label_context_build(task="correct"))
    schema = gemini_on.requests[0]["body"]["generationConfig"]["responseSchema"]
    assert schema["type"] == "OBJECT" and schema["properties"]["changed"]["type"] == "BOOLEAN"
    assert "additionalProperties" not in json.dumps(schema)


def test_request_hash_depends_on_inputs(gemini_on, corpus):
    ctx = label_context_build(task="correct")
    for alt in corpus["alts"][:2]:
        alt_text_llm_correct(alt_text=alt, ctx=ctx)
    hashes = set(LLMCall.objects.values_list("request_hash", flat=True))
    assert len(hashes) == 2
    body = gemini_on.requests[0]["body"]
    assert json.dumps(body)  # a plain JSON request, nothing exotic
