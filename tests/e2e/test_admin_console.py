"""End to end in Chromium, for admins and reviewers: set up a project in the browser (facets,
members), import an upload with a bad record, adjudicate with the voters' names and rationales
and move on to the next disputed pair, page and filter the consensus table, read a snapshot's
details; a screenshot and an axe audit of every new page."""

import json
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from annotate.models import Membership, Post
from config.celery import app
from preferences.models import Facet, Judgement
from tests.conftest import png_bytes
from tests.ui.factories import make_pair

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_celery():
    # The live server runs the import task in-process, as `make run` does.
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_admin_sets_up_a_project_in_the_browser(
    project, member, make_user, login, live_server, page, shot, audit
):
    member("boss", "admin")
    make_user("ann")
    login(page, "boss")
    page.get_by_role("link", name="New project").click()
    expect(page.get_by_role("heading", name="New project")).to_be_visible()
    audit(page, "new project")
    page.get_by_label("Name").fill("Alt-text 2027")
    page.get_by_label("Guidelines for raters (Markdown)").fill("# Be brief\n\nSay what matters.")
    page.get_by_label("Twitter / X").check()
    page.get_by_label("Pinterest").check()
    page.get_by_label("Overlap (distinct raters per pair)").fill("3")
    shot(page, "admin-01-new-project")
    page.get_by_role("button", name="Create project").click()

    expect(page.get_by_role("heading", name="Settings: Alt-text 2027")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("you are its admin")
    new = Membership.objects.get(
        user__username="boss", role="admin", project__name="Alt-text 2027"
    ).project
    assert (new.platforms, new.overlap) == (["twitter", "pinterest"], 3)
    audit(page, "project settings")
    page.get_by_label("Label of facet concise").fill("Short enough")
    page.get_by_label("Ask facet fluent").uncheck()
    page.get_by_role("button", name="Save facets").click()
    expect(page.locator(".messages")).to_contain_text("Facets saved.")
    page.get_by_label("Key (letters, digits, - or _)").fill("tone")
    page.locator("#nf-label").fill("Tone")
    page.get_by_label("Question", exact=True).fill("Which alt-text fits the post's tone?")
    page.get_by_role("button", name="Add facet").click()
    expect(page.get_by_label("Label of facet tone")).to_have_value("Tone")
    shot(page, "admin-02-settings")
    facets = {f.key: f for f in Facet.objects.filter(project=new)}
    assert facets["concise"].label == "Short enough" and not facets["fluent"].is_active
    assert facets["tone"].is_active

    page.get_by_role("link", name="Members and roles").click()
    expect(page.get_by_role("heading", name="Members: Alt-text 2027")).to_be_visible()
    audit(page, "members")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Role", exact=True).select_option("annotator")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".messages")).to_contain_text("ann is now annotator")
    page.get_by_label("New role for ann").select_option("reviewer")
    page.get_by_role("button", name="Set role of ann").click()
    expect(page.locator(".messages")).to_contain_text("ann is now reviewer")
    shot(page, "admin-03-members")
    assert Membership.objects.get(project=new, user__username="ann").role == "reviewer"
    # The last admin cannot remove themselves: the project would have nobody to run it.
    page.get_by_role("button", name="Remove boss").click()
    expect(page.locator(".messages")).to_contain_text("keeps at least one admin")
    page.get_by_role("button", name="Remove ann").click()
    expect(page.locator(".messages")).to_contain_text("Member removed.")
    assert not Membership.objects.filter(project=new, user__username="ann").exists()
    audit(page, "members after changes")


def test_upload_import_reports_the_bad_record_and_keeps_the_good_ones(
    project, member, eager_celery, login, live_server, page, shot, audit, tmp_path
):
    member("boss", "admin")
    rows = [
        {
            "image": "cake.png",
            "context": "Bake sale today",
            "chosen": "A red cake.",
            "rejected": "cake",
        },
        {"image": "logo.png", "context": "Our new logo", "alt_text": "A blue circle logo."},
        {"image": "nowhere.png", "context": "Lost", "alt_text": "An image nobody uploaded."},
    ]
    data = tmp_path / "posts.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "cake.png").write_bytes(png_bytes((220, 20, 20)))
    (tmp_path / "logo.png").write_bytes(png_bytes((20, 20, 220)))
    login(page, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/")
    page.get_by_role("link", name="Import data (upload files)").click()
    expect(page.get_by_role("heading", name="Import data: Test project")).to_be_visible()
    audit(page, "imports")
    page.get_by_label(
        "Data files: MCM-DPO reference JSON, JSON Lines (TAlt / PAlt) or CSV"
    ).set_input_files(str(data))
    page.get_by_label("Images").set_input_files(
        [str(tmp_path / "cake.png"), str(tmp_path / "logo.png")]
    )
    page.get_by_label("Platform").select_option("twitter")
    shot(page, "admin-04-upload-form")
    page.get_by_role("button", name="Upload and import").click()

    expect(page.get_by_role("heading", name="Status")).to_be_visible()
    expect(page.locator("#import-status [role=status]")).to_contain_text("Done")
    expect(page.locator("#n-imported")).to_have_text("2")
    expect(page.locator("#n-rejected")).to_have_text("1")
    errors = page.locator("#import-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("posts.jsonl")
    expect(errors.first).to_contain_text("3")
    expect(errors.first).to_contain_text("nowhere.png")
    shot(page, "admin-05-import-report")
    audit(page, "import report")
    assert set(Post.objects.filter(project=project).values_list("context", flat=True)) == {
        "Bake sale today",
        "Our new logo",
    }
    page.get_by_role("link", name="Import data").click()
    expect(page.locator("table.data tbody tr").first).to_contain_text("Done")


def test_adjudication_shows_names_and_rationales_and_moves_to_the_next_disputed_pair(
    project, member, login, live_server, page, shot, audit
):
    from preferences.services import judgement_record

    first = make_pair(project=project, a="A red circle.", b="A circle.")
    second = make_pair(project=project, a="A blue square.", b="A square.")
    ada, bob = member("ada"), member("bob")
    overall = project.facets.get(key="overall")
    for pair in (first, second):
        judgement_record(
            pair=pair, facet=overall, user=ada, choice="A", rationale="A names the colour."
        )
        judgement_record(pair=pair, facet=overall, user=bob, choice="B", rationale="B is shorter.")
    member("rev", "reviewer")
    login(page, "rev")
    page.goto(f"{live_server.url}/projects/{project.id}/review/")
    audit(page, "review list")
    page.get_by_role("link", name="Start with the first disputed pair").click()
    expect(page.get_by_role("heading", name=f"Adjudicate pair {first.id}")).to_be_visible()
    votes = page.locator("#votes")
    expect(votes.get_by_role("row", name="ada")).to_contain_text("A is better")
    expect(votes.get_by_role("row", name="ada")).to_contain_text("A names the colour.")
    expect(votes.get_by_role("row", name="bob")).to_contain_text("B is better")
    expect(votes.get_by_role("row", name="bob")).to_contain_text("B is shorter.")
    shot(page, "admin-06-adjudicate")
    audit(page, "adjudication")
    page.keyboard.press("1")
    page.get_by_label("Rationale (optional)").fill("The colour matters here.")
    page.get_by_role("button", name="Save adjudication").click()

    expect(page.get_by_role("heading", name=f"Adjudicate pair {second.id}")).to_be_visible()
    expect(page.locator("#live")).to_contain_text("Adjudication saved")
    ruling = Judgement.objects.get(pair=first, kind="adjudication")
    assert (ruling.choice, ruling.rationale) == ("A", "The colour matters here.")
    shot(page, "admin-07-next-disputed")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.get_by_text("No disagreements to review.")).to_be_visible()


def test_consensus_pages_filters_and_charts(project, member, login, live_server, page, shot, audit):
    from preferences.consensus.services import consensus_recompute
    from preferences.services import judgement_record

    ada, bob = member("ada"), member("bob")
    overall = project.facets.get(key="overall")
    concise = project.facets.get(key="concise")
    for i in range(30):
        pair = make_pair(project=project, a=f"Alt {i} A", b=f"Alt {i} B")
        judgement_record(pair=pair, facet=overall, user=ada, choice="A")
        judgement_record(pair=pair, facet=overall, user=bob, choice="A" if i % 3 else "B")
        if i < 4:
            judgement_record(pair=pair, facet=concise, user=ada, choice="tie")
    consensus_recompute(project=project)
    member("boss", "admin")
    login(page, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/consensus/")
    expect(page.get_by_role("heading", name="Consensus labels")).to_be_visible()
    expect(page.get_by_role("img", name="Percent agreement among humans per facet")).to_be_visible()
    expect(page.get_by_role("img", name="Consensus labels per confidence band")).to_be_visible()
    table = page.locator("#consensus-table")
    expect(table.locator("caption")).to_contain_text("34 labels")
    expect(table.locator("caption")).to_contain_text("page 1 of 2")
    expect(table.locator("tbody tr")).to_have_count(25)
    shot(page, "admin-08-consensus")
    audit(page, "consensus dashboard")
    page.get_by_role("link", name="Next page").click()
    expect(table.locator("tbody tr")).to_have_count(9)

    page.get_by_label("Facet", exact=True).select_option("concise")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("caption")).to_contain_text("4 labels matching the filters")
    expect(table.locator("tbody tr")).to_have_count(4)
    page.get_by_label("Label", exact=True).select_option("A")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_contain_text("No consensus labels match these filters.")
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label("Only flagged for review").check()
    page.get_by_role("button", name="Filter").click()
    flagged = table.locator("tbody tr")
    for i in range(flagged.count()):
        expect(flagged.nth(i).locator("td").last).to_have_text("yes")
    shot(page, "admin-09-consensus-flagged")
    audit(page, "consensus filtered")


def test_snapshot_details_api_docs_and_llm_page(
    project, member, login, live_server, page, shot, audit
):
    from snapshots.selectors import SnapshotFilters
    from snapshots.services import snapshot_create, snapshot_run

    make_pair(project=project, known_preference="A")
    boss = member("boss", "admin")
    login(page, "boss")
    snapshot = snapshot_create(
        user=boss,
        project=project,
        kind="palt",
        filters=SnapshotFilters(project_id=project.id),
        formats=["jsonl"],
    )
    snapshot_run(snapshot_id=snapshot.pk)
    page.goto(f"{live_server.url}/snapshots/{snapshot.pk}/")
    expect(page.locator("#snapshot-counts")).to_contain_text("Pair source")
    expect(page.locator("#snapshot-filters")).to_contain_text("Pairs labelled only by the LLM")
    assert "{'" not in page.content()  # no Python dict printed raw
    shot(page, "admin-10-snapshot")
    audit(page, "snapshot details")

    page.goto(f"{live_server.url}/projects/{project.id}/llm/")
    expect(page.get_by_role("heading", name="Try it without a Gemini key")).to_be_visible()
    expect(page.locator("#try-fake")).to_contain_text("python -m preferences.labelers.fake_gemini")
    audit(page, "llm page")

    def local(url: str) -> bool:
        return url.startswith(("data:", "blob:")) or urlparse(url).hostname in (
            "127.0.0.1",
            "localhost",
        )

    asked, fetched = [], []  # asked: any request; fetched: ones that got an answer
    page.on("request", lambda r: None if local(r.url) else asked.append(r.url))
    page.on("requestfinished", lambda r: None if local(r.url) else fetched.append(r.url))
    page.get_by_role("link", name="API docs").click()
    expect(page.get_by_text("AltPref API").first).to_be_visible(timeout=20_000)
    page.wait_for_load_state("networkidle")
    shot(page, "admin-11-redoc")
    assert not [u for u in asked if "font" in u], asked  # no web fonts are even asked for
    assert fetched == []  # and Redoc's CDN logo is refused by the page's policy


def test_upload_import_on_a_real_worker_updates_the_page_by_itself(
    project, member, celery_worker_running, login, live_server, page, tmp_path
):
    member("boss", "admin")
    data = tmp_path / "more.jsonl"
    data.write_text(json.dumps({"image": "sq.png", "context": "Squares", "alt_text": "A square."}))
    (tmp_path / "sq.png").write_bytes(png_bytes((20, 160, 20)))
    login(page, "boss")
    page.goto(f"{live_server.url}/projects/{project.id}/imports/")
    page.get_by_label(
        "Data files: MCM-DPO reference JSON, JSON Lines (TAlt / PAlt) or CSV"
    ).set_input_files(str(data))
    page.get_by_label("Images").set_input_files(str(tmp_path / "sq.png"))
    page.get_by_role("button", name="Upload and import").click()
    # The worker runs after the redirect; the status section polls until it is done.
    expect(page.locator("#import-status [role=status]")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#n-imported")).to_have_text("1")
    assert Post.objects.filter(project=project, context="Squares").exists()
