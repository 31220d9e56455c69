"""End to end in Chromium: an admin exports a PAlt snapshot, watches it finish, downloads it."""

import json

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_admin_exports_and_downloads_palt(
    labelled, celery_worker_running, login, live_server, page, shot, audit
):
    login(page, "boss")
    page.goto(f"{live_server.url}/projects/{labelled.project.pk}/snapshots/")
    expect(page.get_by_role("heading", name="New snapshot")).to_be_visible()
    audit(page, "snapshots page")
    page.get_by_label("Kind").select_option("palt")
    page.get_by_label("Parquet (images embedded)").check()
    page.get_by_role("button", name="Export").click()
    expect(page.get_by_text("started.")).to_be_visible()
    # The row polls every 2 s until the worker has finished.
    expect(page.get_by_role("link", name="palt.json")).to_be_visible(timeout=60_000)
    shot(page, "snapshot-done")
    with page.expect_download() as download:
        page.get_by_role("link", name="palt.json").click()
    records = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert len(records) == 23 and set(json.loads(records[0]["text"])) == {
        "question",
        "chosen",
        "rejected",
    }
