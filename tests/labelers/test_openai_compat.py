"""The OpenAI-compatible provider against a fake chat-completions server on loopback: the
request it sends, provenance and cost, retries on 429/500 and timeouts, bad answers and bad
envelopes, an unreachable server, the provider registry, and picking a provider for a run."""

import base64
from decimal import Decimal

import pytest
from django.urls import reverse

from annotate.models import AltText
from core.errors import ApplicationError
from preferences.labelers.config import provider_get
from preferences.labelers.models import LabelRun, LLMCacheEntry, LLMCall
from preferences.labelers.services import (
    LLMCallFailed,
    alt_text_llm_correct,
    label_context_build,
    label_run_batch,
    label_run_start,
    pair_llm_judge,
)

pytestmark = pytest.mark.django_db


def _correct(alt):
    return alt_text_llm_correct(alt_text=alt, ctx=label_context_build(task="correct"))


def test_a_correction_goes_over_chat_completions_with_a_json_schema(openai_on, corpus):
    alt = corpus["alts"][0]
    correction = _correct(alt)

    assert correction.result.text == "A dog on the beach 0."
    assert correction.labeler.provider == "openai" and correction.labeler.model_id == "fake-vlm"
    call = correction.call
    assert call.status == "ok" and call.input_tokens > 0 and call.output_tokens > 0
    assert call.cost_usd == 0  # a self-hosted model name has no per-token price

    (request,) = openai_on.requests
    assert request["path"] == "/v1/chat/completions" and request["api_key"] == "sk-test"
    body = request["body"]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0
    image, text = body["messages"][0]["content"]
    header, data = image["image_url"]["url"].split(",", 1)
    assert header == "data:image/png;base64"
    with alt.post.image.file.open("rb") as handle:
        assert base64.b64decode(data) == handle.read()
    assert "Post number 0" in text["text"]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"corrected", "changed"}


def test_judging_both_orders_stores_llm_judgements(openai_on, corpus):
    pair = corpus["pairs"][0]
    judgements = pair_llm_judge(pair=pair, ctx=label_context_build(task="judge"))
    assert len(openai_on.requests) == 2
    assert judgements and all(j.choice == "B" and not j.llm_verdict.flipped for j in judgements)
    assert {j.rater_llm.provider for j in judgements} == {"openai"}


def test_429_and_500_are_retried_then_the_label_is_stored(openai_on, corpus):
    openai_on.script = ["429", "500"]
    assert _correct(corpus["alts"][0]).result is not None
    calls = list(LLMCall.objects.order_by("id").values_list("attempt", "status", "http_status"))
    assert calls == [(1, "failed", 429), (2, "failed", 500), (3, "ok", 200)]
    assert "rate_limit_exceeded" in LLMCall.objects.order_by("id").first().error


def test_retries_stop_at_the_limit_and_store_nothing(openai_on, corpus, settings):
    openai_on.default = "500"
    with pytest.raises(LLMCallFailed, match="after 3 attempts"):
        _correct(corpus["alts"][0])
    assert len(openai_on.requests) == settings.OPENAI_MAX_RETRIES + 1 == 3
    assert not AltText.objects.filter(origin="llm-corrected").exists()


def test_a_timeout_is_retried(openai_on, corpus):
    openai_on.script = ["slow"]  # 1.0 s answer against a 0.4 s timeout
    assert _correct(corpus["alts"][0]).result is not None
    first = LLMCall.objects.order_by("id").first()
    assert first.status == "failed" and "timeout" in first.error
    assert len(openai_on.requests) == 2


@pytest.mark.parametrize("behaviour", ["malformed", "off-schema", "bad-envelope", "refusal"])
def test_bad_answers_are_failed_calls_never_retried_never_labels(openai_on, corpus, behaviour):
    openai_on.default = behaviour
    with pytest.raises(LLMCallFailed):
        _correct(corpus["alts"][0])
    (call,) = LLMCall.objects.all()  # a bad answer is not a transport problem: no retry
    assert call.status == "failed" and call.http_status == 200 and call.error
    assert not AltText.objects.filter(origin="llm-corrected").exists()
    assert not LLMCacheEntry.objects.exists()


def test_an_unreachable_server_is_a_transient_failure(openai_on, corpus, settings):
    openai_on.stop()
    with pytest.raises(LLMCallFailed, match="Could not reach"):
        _correct(corpus["alts"][0])
    assert LLMCall.objects.filter(status="failed").count() == settings.OPENAI_MAX_RETRIES + 1


def test_a_run_uses_the_picked_provider_and_caches_per_provider(
    gemini_on, openai_on, corpus, settings
):
    settings.GEMINI_API_KEY = "test-key"  # both providers configured
    settings.OPENAI_MODEL = settings.GEMINI_MODEL  # same model name, different servers
    project = corpus["project"]

    def drain(run):
        while not run.is_finished:
            run = label_run_batch(run_id=run.pk)
        return run

    by_gemini = drain(label_run_start(project=project, task="correct", enqueue=False))
    assert by_gemini.labeler.provider == "gemini"  # the first configured when none is picked
    by_openai = drain(
        label_run_start(project=project, task="correct", enqueue=False, provider="openai")
    )
    assert by_openai.labeler.provider == "openai" and by_openai.done == 3
    # The same inputs and model name, but another provider: no answer is borrowed.
    assert len(gemini_on.requests) == len(openai_on.requests) == 3
    assert by_openai.cache_hits == 0
    assert set(LLMCacheEntry.objects.values_list("provider", flat=True)) == {"gemini", "openai"}

    settings.LLM_PROVIDER = "openai"
    run = label_run_start(project=project, task="judge", enqueue=False, limit=1)
    assert run.labeler.provider == "openai"


def test_unknown_or_unconfigured_providers_are_refused(gemini_on, corpus):
    project = corpus["project"]
    with pytest.raises(ApplicationError, match="not configured") as info:
        label_run_start(project=project, task="judge", provider="openai")
    assert info.value.status_code == 409
    with pytest.raises(ApplicationError, match='Unknown LLM provider "claude"'):
        label_run_start(project=project, task="judge", provider="claude")
    assert not LabelRun.objects.exists()


def test_prices_are_per_provider_and_model():
    openai = provider_get("openai")
    assert openai.cost(model_id="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0) == (
        Decimal("0.15")
    )
    assert openai.cost(model_id="gpt-4o", input_tokens=0, output_tokens=1_000_000) == (
        Decimal("10.00")
    )
    assert openai.cost(model_id="qwen2.5-vl", input_tokens=10**6, output_tokens=10**6) == 0


def test_the_admin_picks_the_provider_on_the_dashboard_and_the_api(
    gemini_on, openai_on, corpus, client, member, settings
):
    settings.GEMINI_API_KEY = "test-key"
    project = corpus["project"]
    client.force_login(member("ada", role="admin"))
    page = client.get(reverse("labelers:dashboard", args=[project.pk])).content.decode()
    assert 'name="provider" value="gemini"' in page and 'name="provider" value="openai"' in page
    assert "fake-vlm" in page

    response = client.post(
        reverse("labelers:start", args=[project.pk]),
        {"task": "judge", "limit": "1", "provider": "openai"},
    )
    assert response.status_code == 302
    assert LabelRun.objects.get().labeler.provider == "openai"

    api = reverse("labelers:api-runs", args=[project.pk])
    created = client.post(
        api, {"task": "correct", "limit": 1, "provider": "gemini"}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["provider"] == "gemini"
    bad = client.post(api, {"task": "judge", "provider": "x"}, content_type="application/json")
    assert bad.status_code == 400


def test_llm_label_command_takes_the_provider(gemini_on, openai_on, corpus, settings, capsys):
    from django.core.management import call_command

    settings.GEMINI_API_KEY = "test-key"
    call_command(
        "llm_label", project=corpus["project"].name, task="judge", limit=1, sync=True,
        provider="openai",
    )  # fmt: skip
    assert "1 done, 0 failed" in capsys.readouterr().out
    assert LabelRun.objects.get().labeler.provider == "openai"
    assert len(openai_on.requests) == 2 and not gemini_on.requests


def test_the_admin_site_lists_cached_answers_by_provider(openai_on, corpus, admin_client):
    _correct(corpus["alts"][0])
    page = admin_client.get(
        reverse("admin:labelers_llmcacheentry_changelist"), {"provider": "openai"}
    )
    assert page.status_code == 200 and "fake-vlm" in page.content.decode()
