"""End to end in Chromium: correct one alt-text, judge a pair with the keyboard only, adjudicate,
with a screenshot and an axe audit of every screen."""

import pytest
from playwright.sync_api import expect

from preferences.models import Assignment, CandidatePair, Judgement
from tests.ui.factories import make_alt, make_pair, make_post

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GUIDELINES = "# How to judge\n\nPrefer alt-text that says what matters **for this post**."


@pytest.fixture
def rating_project(project):
    project.guidelines = GUIDELINES
    project.save()
    return project


def test_judge_one_pair_with_the_keyboard_only(
    rating_project, member, login, live_server, page, shot, audit
):
    project = rating_project
    make_pair(
        project=project,
        context='Bake sale <b>today</b> & "free" 🍰',
        a="A red circle logo.",
        b="image of logo.png",
    )
    make_pair(project=project)
    member("ann")
    login(page, "ann")
    page.goto(f"{live_server.url}/projects/{project.id}/rate/")
    expect(page.get_by_role("heading", name="How to judge")).to_be_visible()
    shot(page, "01-rate-home")
    audit(page, "rate home")
    page.get_by_role("link", name="Start judging pairs").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Compare two alt-texts")).to_be_visible()
    expect(page.locator(".context")).to_contain_text('Bake sale <b>today</b> & "free" 🍰')
    shot(page, "02-judge")
    audit(page, "judge screen")

    # ? shows the key map; Escape closes it.
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    shot(page, "03-keymap")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()

    # Row 1: tie, then k goes back up to it and 1 changes it to A; 2, 3, 4 on the next rows.
    page.keyboard.press("3")
    page.keyboard.press("k")
    for key in ["1", "2", "3", "4"]:
        page.keyboard.press(key)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("j")
    page.keyboard.press("2")  # last row: B
    # Typing digits into the rationale must not change answers.
    page.get_by_label("Rationale (optional)").focus()
    page.keyboard.type("12 s u")
    page.keyboard.press("Escape")
    page.locator(".facet-row").first.locator("input:checked").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_contain_text("Saved your answers")
    shot(page, "04-after-submit")

    assignment = Assignment.objects.get(status="done")
    shown = assignment.shown_order

    def stored(displayed):
        if shown == "BA" and displayed in "AB":
            return {"A": "B", "B": "A"}[displayed]
        return displayed

    got = dict(Judgement.objects.filter(pair=assignment.pair).values_list("facet__key", "choice"))
    assert got == {
        "overall": stored("A"),
        "faithful": stored("B"),
        "context": "tie",
        "concise": "both-bad",
        "fluent": stored("B"),
    }
    assert set(Judgement.objects.values_list("rationale", flat=True)) == {"12 s u"}

    # u undoes that submission within its reservation: back on the same item.
    page.keyboard.press("u")
    expect(page.locator("#live")).to_contain_text("Undone")
    assert Judgement.objects.count() == 0
    expect(page).to_have_url(f"{live_server.url}/rate/items/{assignment.id}/?done=undone")

    # s skips it: the item goes back to the queue and the next one is served.
    page.keyboard.press("s")
    expect(page.locator("#live")).to_contain_text("Skipped")
    assignment.refresh_from_db()
    assert assignment.status == "skipped"
    expect(page.get_by_role("heading", name="Compare two alt-texts")).to_be_visible()


def test_correct_one_alt_text(rating_project, member, login, live_server, page, shot, audit):
    project = rating_project
    post = make_post(project=project, context="Our new logo <script>alert(1)</script>")
    alt = make_alt(post=post, text="image of logo.png")
    make_alt(post=post, text="A red circle logo on white.", origin="llm-corrected", parent=alt)
    member("ann")
    login(page, "ann")
    page.goto(f"{live_server.url}/projects/{project.id}/correct/")
    expect(page.get_by_role("heading", name="LLM suggestion")).to_be_visible()
    expect(page.locator("[data-check=opener]")).to_be_visible()
    expect(page.locator("[data-check=filename]")).to_be_visible()
    shot(page, "05-correct")
    audit(page, "correction screen")
    editor = page.get_by_label("Your alt-text")
    editor.fill("")
    editor.type("A red circle logo. See https://x.example #logo")
    expect(page.locator("[data-check=url]")).to_be_visible()
    expect(page.locator("[data-check=hashtag]")).to_be_visible()
    expect(page.locator("#diff ins")).to_contain_text("A red circle logo.")
    shot(page, "06-correct-editing")
    audit(page, "correction screen while editing")
    page.get_by_role("button", name="Save my edit").click()
    expect(page.locator("#live")).to_contain_text("Saved your correction")
    edited = alt.corrections.get(origin="human-corrected")
    assert edited.text == "A red circle logo. See https://x.example #logo"
    assert CandidatePair.objects.filter(
        source="correction", alt_a=edited, alt_b=alt, known_preference="A"
    ).exists()
    shot(page, "07-correct-done")


def test_reviewer_adjudicates_and_admin_sees_dashboard(
    rating_project, member, login, live_server, page, browser, shot, audit
):
    from preferences.services import judgement_record

    project = rating_project
    pair = make_pair(project=project, a="A red circle.", b="A circle.")
    r1, r2 = member("r1"), member("r2")
    for user, choice in [(r1, "A"), (r2, "B")]:
        for facet in project.facets.all():
            judgement_record(
                pair=pair,
                facet=facet,
                user=user,
                choice=choice,
                shown_order="AB" if user == r1 else "BA",
            )
    member("rev", "reviewer")
    login(page, "rev")
    page.goto(f"{live_server.url}/projects/{project.id}/review/")
    shot(page, "08-review-queue")
    audit(page, "review queue")
    page.get_by_role("link", name=f"Adjudicate pair {pair.id}").click()
    expect(page.get_by_role("heading", name=f"Adjudicate pair {pair.id}")).to_be_visible()
    shot(page, "09-adjudicate")
    audit(page, "adjudication")
    for _ in range(project.facets.count()):
        page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_contain_text("Adjudication saved")
    assert set(Judgement.objects.filter(kind="adjudication").values_list("choice", flat=True)) == {
        "B"
    }

    member("boss", "admin")
    context = browser.new_context()
    admin_page = context.new_page()
    login(admin_page, "boss")
    admin_page.goto(f"{live_server.url}/projects/{project.id}/dashboard/")
    expect(
        admin_page.get_by_role("heading", name="Project dashboard: Test project")
    ).to_be_visible()
    shot(admin_page, "10-dashboard")
    audit(admin_page, "dashboard")
    context.close()
