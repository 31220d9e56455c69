"""End to end in Chromium: an admin starts a training round on a tiny snapshot from the rounds
page; a real Celery worker (gpu queue) trains it while the page's htmx polling shows the progress
and stops at Done; screenshots and an axe audit of the form, the running and the finished round."""

import json

import pytest
from playwright.sync_api import expect

from modeltrain.models import RoundStatus, TrainingRound
from preferences.models import CandidatePair
from tests.modeltrain.conftest import add_synthetic_posts, export_palt_snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HYPER = {"max_steps": 2, "save_steps": 2}
OPTIONS = {
    "eval_limit": 2,
    "feedback_limit": 2,
    "max_new_tokens": 8,
    "num_beams": 1,
    "evaluate_base": False,
}


@pytest.fixture
def tiny_snapshot(project, settings, tmp_path):
    settings.ALTPREF_ROUNDS = {
        **settings.ALTPREF_ROUNDS,
        "DIR": str(tmp_path / "rounds"),
        "PROGRESS_EVERY": 1,
        "HEARTBEAT_S": 1.0,
    }
    add_synthetic_posts(project, train=6, test=2)
    return export_palt_snapshot(project)


def test_start_a_round_and_watch_it_finish(
    project, tiny_snapshot, member, celery_worker_running, login, live_server, page, shot, audit
):
    member("round-admin", "admin")
    login(page, "round-admin")
    page.goto(f"{live_server.url}/rounds/projects/{project.id}/")
    expect(page.get_by_role("heading", name="Start a round")).to_be_visible()
    expect(page.get_by_text("No rounds yet.")).to_be_visible()
    page.get_by_label("Snapshot").select_option(str(tiny_snapshot.pk))
    page.get_by_label("Method").select_option("mcmdpo")
    expect(page.get_by_label("Paradigm")).to_have_value("both")  # the paper's best, preselected
    page.get_by_label("Base model").fill("tiny")
    page.get_by_label("Hyper-parameters").fill(json.dumps(HYPER))
    page.get_by_label("Round options").fill(json.dumps(OPTIONS))
    shot(page, "rounds-01-start-form")
    audit(page, "rounds list and start form")
    page.get_by_role("button", name="Start round").click()

    round_ = TrainingRound.objects.get()
    page.wait_for_url(f"{live_server.url}/rounds/{round_.pk}/")
    expect(page.get_by_role("heading", name=f"Round {round_.pk}: MCM-DPO")).to_be_visible()
    status = page.locator("#round-status")
    expect(status).to_have_attribute("hx-trigger", "every 2s")  # polling while unfinished
    # A marker on the loaded page: if it survives to Done, the updates came by htmx polling
    # and not by reloading the page.
    page.evaluate("window.__roundPageMarker = 'still here'")
    shot(page, "rounds-02-queued-or-running")
    audit(page, "round detail while unfinished")

    expect(status.get_by_role("status")).to_contain_text("Done", timeout=180_000)
    assert page.evaluate("window.__roundPageMarker") == "still here"
    expect(status).not_to_have_attribute("hx-trigger", "every 2s")  # polling has stopped
    expect(page.locator("#round-curve")).to_be_visible()
    expect(page.locator("#round-scores")).to_contain_text("CIDEr")
    expect(page.get_by_role("button", name="Cancel round")).to_have_count(0)

    round_.refresh_from_db()
    assert round_.status == RoundStatus.DONE and round_.attempts == 1, round_.error
    assert round_.step == round_.total_steps == 2 and round_.eval_count == 2
    assert round_.paradigm == "both"
    pairs = CandidatePair.objects.filter(source_round_id=round_.pk)
    assert pairs.exists()
    expect(page.locator("#round-candidates li")).to_have_count(pairs.count())
    expect(page.locator("#round-candidates")).to_contain_text(f"Pair {pairs.first().pk}")
    shot(page, "rounds-03-done")
    audit(page, "round detail when done")

    page.get_by_role("link", name=f"All rounds of {project.name}").click()
    expect(page.locator(f"#round-{round_.pk}")).to_contain_text("Done")
