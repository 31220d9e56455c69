"""End to end in Chromium: an admin starts a training round on a tiny snapshot from the rounds
page; a real Celery worker (gpu queue) trains it while the page's htmx polling shows the progress
and stops at Done; screenshots and an axe audit of the form, the running and the finished round."""

import json
import re

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
    # The message names the state the round was in when the page loaded, never "queued" for
    # a round that had moved on.
    # (A real worker takes it within moments; training takes longer than the redirect.)
    flash = page.locator(".messages")
    expect(flash).to_have_text(re.compile(rf"Round {round_.pk} (queued: it starts|started \()"))
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
    expect(page.locator("#round-curve text", has_text="Training step")).to_have_count(1)
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


HISTORY = [
    {"step": s, "loss": round(0.69 - 0.04 * s, 4), "margins": {"image": round(0.3 * s, 4)}}
    for s in range(1, 11)
]


def _finished_round(project, snapshot, admin, monkeypatch, **options):
    """A round as a worker leaves it (via the real services, the gpu message not sent)."""
    from modeltrain import services

    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)
    round_ = services.round_start(
        user=admin, snapshot_id=snapshot.pk, method="mcmdpo", base_model="tiny",
        options={**OPTIONS, **options},
    )  # fmt: skip
    TrainingRound.objects.filter(pk=round_.pk).update(
        status=RoundStatus.DONE, step=10, total_steps=10, history=HISTORY, loss=0.29,
        scores={"ROUGE-L": 0.41, "CIDEr": 1.2}, base_scores={"ROUGE-L": 0.2, "CIDEr": 0.4},
        eval_count=2,
    )  # fmt: skip
    round_.refresh_from_db()
    return round_


def test_win_rates_ranking_chart_and_side_by_side(
    project, tiny_snapshot, member, login, live_server, page, shot, audit, monkeypatch
):
    from modeltrain.feedback import feedback_record
    from modeltrain.models import RoundOutput
    from preferences.rating.queue import assignment_next, assignment_skip, assignment_submit

    admin = member("round-admin", "admin")
    first = _finished_round(project, tiny_snapshot, admin, monkeypatch)
    second = _finished_round(project, tiny_snapshot, admin, monkeypatch, feedback_base=False)
    train = list(project.posts.filter(split="train").order_by("id")[:4])
    good = {}
    for i, post in enumerate(train[:3]):
        good[feedback_record(round_=first, post=post, text=f"A red shape number {i}.").pair_id] = (
            "A"
        )
        good[feedback_record(round_=second, post=post, text=f"Blurry thing {i}.").pair_id] = "B"
        feedback_record(round_=first, post=post, text=f"Some shape {i}.", model="base")
    loop = "an off - white an off - white an off - white"
    feedback_record(round_=second, post=train[3], text=loop)
    feedback_record(round_=first, post=train[3], text="Some shape 3.", model="base")
    for post in project.posts.filter(split="test"):
        for round_, model, text in [(first, "trained", "A red circle."), (first, "base", "A a a."),
                                    (second, "trained", "A round red thing.")]:  # fmt: skip
            RoundOutput.objects.create(
                round=round_, post=post, purpose="eval", model=model, text=text,
                reference="A red circle on white.",
            )  # fmt: skip
    rater = member("rater")
    for _ in range(30):  # the rater answers the rounds' pairs from the queue
        assignment = assignment_next(project=project, user=rater)
        if assignment is None:
            break
        stored = good.get(assignment.pair_id)
        if stored is None:
            assignment_skip(assignment_id=assignment.pk, user=rater)
            continue
        shown = {"A": "B", "B": "A"}[stored] if assignment.shown_order == "BA" else stored
        facets = ["overall", "faithful", "context", "concise", "fluent"]
        assignment_submit(
            assignment_id=assignment.pk, user=rater, answers=dict.fromkeys(facets, shown)
        )

    login(page, "round-admin")
    page.goto(f"{live_server.url}/rounds/projects/{project.id}/")
    ranking = page.locator("#rounds-ranking")
    expect(ranking).to_be_visible()
    rows = ranking.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text(f"Round {first.pk}")
    expect(rows.nth(2)).to_contain_text(f"Round {second.pk}")  # loses to the existing texts
    expect(page.locator(f"#round-{first.pk}")).to_contain_text("1.00")  # 3 of 3, overall
    expect(page.locator(f"#round-{first.pk}")).to_contain_text("n=3")
    shot(page, "rounds-04-list-ranking")
    audit(page, "rounds list with ranking")

    page.get_by_role("link", name=f"Round {first.pk}", exact=True).first.click()
    page.wait_for_load_state("load")  # rounds.js (deferred) listens from here on
    expect(page.locator("#round-human")).to_contain_text("Overall")
    expect(page.locator("#round-held-back")).to_contain_text("no output")
    chart = page.locator("#round-curve")
    expect(chart.locator("text", has_text="Training step")).to_have_count(1)
    expect(chart.locator("text", has_text="Value (loss, margin)")).to_have_count(1)
    expect(page.locator(".legend")).to_contain_text("margin image")
    first_point = chart.locator(".series").first.locator(".curve-point").first
    first_point.focus()
    expect(page.locator("#curve-readout")).to_have_text("loss at step 1: 0.6500")
    page.keyboard.press("End")
    expect(page.locator("#curve-readout")).to_have_text("loss at step 10: 0.2900")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#curve-readout")).to_have_text("margin image at step 10: 3.0000")
    chart.locator(".series").first.locator(".curve-point").nth(4).hover()
    expect(page.locator("#curve-readout")).to_have_text("loss at step 5: 0.4900")
    shot(page, "rounds-05-detail-chart")
    audit(page, "round detail with chart and win rates")

    page.goto(f"{live_server.url}/rounds/{second.pk}/")
    expect(page.locator("#round-held-back")).to_contain_text("1 repetition loop")

    page.goto(f"{live_server.url}/rounds/projects/{project.id}/compare")
    page.get_by_label("Left").select_option(str(second.pk))
    page.get_by_label("Right").select_option(f"{first.pk}:base")
    page.get_by_role("button", name="Compare").click()
    table = page.locator("#compare-table")
    expect(table.locator("tbody tr")).to_have_count(2 + 4)  # 2 test posts, 4 train posts
    expect(table).to_contain_text("A round red thing.")
    expect(table).to_contain_text("A a a.")
    expect(table).to_contain_text("held back: repetition loop")
    shot(page, "rounds-06-side-by-side")
    audit(page, "rounds side by side")
