"""Labelling runs: batches, budget cap, the llm_label command, the dashboard and API, the
not-configured state, prompt versions and the rate limiter."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotate.models import AltText
from core.errors import ApplicationError
from preferences.labelers.models import LabelRun, LLMCall
from preferences.labelers.prompts import prompt_load
from preferences.labelers.ratelimit import IntervalLimiter
from preferences.labelers.services import label_run_batch, label_run_start
from preferences.models import Judgement

pytestmark = pytest.mark.django_db


def _drain(run):
    while not run.is_finished:
        run = label_run_batch(run_id=run.pk)
    return run


def test_a_run_labels_every_item_in_batches_and_a_rerun_costs_nothing(gemini_on, corpus):
    project = corpus["project"]
    run = label_run_start(project=project, task="correct", enqueue=False)
    assert (run.total, run.batch_size, run.status) == (3, 2, "queued")
    run = label_run_batch(run_id=run.pk)
    assert (run.status, run.done) == ("running", 2)  # one batch of two
    run = _drain(run)
    assert (run.status, run.done, run.failed, run.http_calls) == ("done", 3, 0, 3)
    assert AltText.objects.filter(origin="llm-corrected").count() == 3
    assert run.spent_usd == sum(c.cost_usd for c in LLMCall.objects.all())

    rerun = label_run_start(project=project, task="correct", enqueue=False)
    assert rerun.total == 0 and rerun.status == "done" and "Nothing to label" in rerun.message
    assert len(gemini_on.requests) == 3


def test_failures_are_counted_and_the_run_goes_on(gemini_on, corpus):
    gemini_on.script = ["malformed"]
    run = _drain(label_run_start(project=corpus["project"], task="correct", enqueue=False))
    assert (run.status, run.done, run.failed) == ("done", 2, 1)
    assert "not valid JSON" in run.message


def test_the_budget_cap_stops_a_run_cleanly(gemini_on, corpus):
    # Each call is estimated at ~$0.0013 before it is made, and costs ~$0.0002: the cap lets
    # a couple of calls through, then stops before one would overshoot.
    run = label_run_start(
        project=corpus["project"], task="correct", budget_usd="0.0016", enqueue=False
    )
    run = _drain(run)
    assert run.status == "budget" and "Budget reached" in run.message
    assert 1 <= run.done < run.total
    assert len(gemini_on.requests) == run.done == run.http_calls
    assert run.spent_usd <= run.budget_usd
    assert AltText.objects.filter(origin="llm-corrected").count() == run.done


def test_too_many_failures_in_a_row_stop_the_run(gemini_on, corpus, settings, monkeypatch):
    from preferences.labelers import services

    monkeypatch.setattr(services, "MAX_CONSECUTIVE_FAILURES", 2)
    settings.GEMINI_MAX_RETRIES = 0
    gemini_on.default = "500"
    run = _drain(label_run_start(project=corpus["project"], task="judge", enqueue=False))
    assert run.status == "failed" and "2 items failed in a row" in run.message
    assert not Judgement.objects.exists()


def test_llm_label_command_runs_against_the_fake_server(gemini_on, corpus, capsys):
    project = corpus["project"]
    call_command("llm_label", project=project.name, task="judge", limit=1, sync=True)
    out = capsys.readouterr().out
    assert "1 done, 0 failed" in out and "4 HTTP calls" not in out
    assert Judgement.objects.filter(kind="llm").values("pair").distinct().count() == 1
    assert len(gemini_on.requests) == 2  # one pair, both orders


def test_without_a_key_everything_says_not_configured(
    gemini_off, corpus, client, make_user, capsys
):
    project = corpus["project"]
    with pytest.raises(SystemExit) as exit_info:
        call_command("llm_label", project=str(project.pk), task="correct")
    assert exit_info.value.code == 2
    assert "not configured" in capsys.readouterr().err
    with pytest.raises(ApplicationError, match="not configured") as info:
        label_run_start(project=project, task="judge")
    assert info.value.status_code == 409

    client.force_login(make_user("boss", staff=True))
    for name in ("labelers:dashboard", "consensus:dashboard"):
        page = client.get(reverse(name, args=[project.pk]))
        assert page.status_code == 200
        assert "LLM judge is not configured" in page.content.decode()
    response = client.post(
        reverse("labelers:api-runs", args=[project.pk]), {"task": "judge"}, format="json"
    )
    assert response.status_code == 409 and "not configured" in response.json()["message"]
    assert not LabelRun.objects.exists()


def test_admin_starts_a_run_from_the_dashboard(gemini_on, corpus, client, member, settings):
    project = corpus["project"]
    admin = member("ada", role="admin")
    client.force_login(admin)
    page = client.get(reverse("labelers:dashboard", args=[project.pk]))
    assert page.status_code == 200 and "gemini-2.5-flash" in page.content.decode()
    response = client.post(
        reverse("labelers:start", args=[project.pk]), {"task": "correct", "limit": "2"}
    )
    assert response.status_code == 302
    run = LabelRun.objects.get()
    assert (run.task, run.total, run.started_by) == ("correct", 2, admin)
    fragment = client.get(reverse("labelers:runs", args=[project.pk]))
    assert f'<th scope="row">{run.pk}</th>' in fragment.content.decode()

    bad = client.post(
        reverse("labelers:start", args=[project.pk]), {"task": "correct", "limit": "x"}
    )
    assert bad.status_code == 302 and LabelRun.objects.count() == 1
    assert "whole number" in client.get(bad.url).content.decode()

    client.force_login(member("ann"))
    assert client.get(reverse("labelers:dashboard", args=[project.pk])).status_code == 403


def test_the_api_starts_and_reports_a_run(gemini_on, corpus, client, member):
    project = corpus["project"]
    client.force_login(member("ada", role="admin"))
    url = reverse("labelers:api-runs", args=[project.pk])
    bad = client.post(url, {"task": "paint"}, content_type="application/json")
    assert bad.status_code == 400
    created = client.post(url, {"task": "judge", "limit": 1}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["task"] == "judge" and body["total"] == 1
    detail = client.get(reverse("labelers:api-run", args=[project.pk, body["id"]]))
    assert detail.status_code == 200 and detail.json()["id"] == body["id"]


def test_changing_a_prompt_file_changes_its_version(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Compare $first and $second.")
    before = prompt_load("judge", directory=tmp_path).version
    path.write_text("Compare $first and $second carefully.")
    after = prompt_load("judge", directory=tmp_path).version
    assert before != after and before.startswith("judge-")
    assert prompt_load("judge").version == prompt_load("judge").version  # stable


def test_interval_limiter_spaces_calls():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = IntervalLimiter(120, clock=lambda: now[0], sleep=sleep)  # one per 0.5 s
    for _ in range(4):
        limiter.acquire()
    assert slept == [0.5, 0.5, 0.5]
    now[0] += 10  # idle time is not banked as a burst beyond one call
    limiter.acquire()
    assert slept == [0.5, 0.5, 0.5]
