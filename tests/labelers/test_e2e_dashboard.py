"""In Chromium: an admin starts LLM judging from the dashboard (real SDK → fake Gemini), sees
the run finish, then the blended consensus, flip rate and raters on the consensus page."""

import pytest
from playwright.sync_api import expect

from config.celery import app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_celery():
    # The live server runs the run's tasks in-process, as `make run` does.
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_admin_runs_llm_judging_and_sees_consensus(
    gemini_on, corpus, eager_celery, member, login, live_server, page, shot, audit
):
    project = corpus["project"]
    member("ada", role="admin")
    login(page, "ada")
    page.goto(f"{live_server.url}/projects/{project.id}/llm/")
    expect(page.get_by_role("heading", name=f"LLM labelling: {project.name}")).to_be_visible()
    expect(page.get_by_text("gemini-2.5-flash")).to_be_visible()
    audit(page, "llm dashboard")

    page.get_by_label("Facet judgement").check()
    page.get_by_label("Limit (items, empty = all)").fill("2")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text("started: 2 items to facet judgement")).to_be_visible()
    expect(page.locator("#runs")).to_contain_text("2 done, 0 failed of 2")
    expect(page.locator("#runs")).to_contain_text("Done")
    shot(page, "llm-01-dashboard-after-run")
    assert len(gemini_on.requests) == 4  # 2 pairs × both orders

    page.get_by_role("link", name="Consensus and agreement").click()
    expect(
        page.get_by_role("heading", name=f"Consensus and agreement: {project.name}")
    ).to_be_visible()
    overall = page.get_by_role("row", name="Overall").first
    expect(overall).to_contain_text("0.0 % (0/2)")  # flip rate: both orders agreed
    expect(page.get_by_role("cell", name="B is better").first).to_be_visible()
    shot(page, "llm-02-consensus")
    audit(page, "consensus dashboard")
