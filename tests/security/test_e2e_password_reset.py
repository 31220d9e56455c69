"""End to end in Chromium: a rater who forgot their password resets it through the emailed
link (Django's locmem email backend) and logs in with the new one; every page on the way, and
the main pages of the app, load with no Content-Security-Policy violation and pass axe."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.ui.factories import make_alt, make_pair, make_post

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_errors(page):
    """Console messages Chromium prints when the page's CSP blocks something."""
    seen = []
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return seen


def test_reset_a_forgotten_password_by_email(
    live_server, page, make_user, csp_errors, audit, shot, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = make_user("ann")
    user.email = "ann@example.org"
    user.save()

    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    audit(page, "password reset form")
    page.get_by_label("Email").fill("ann@example.org")
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    (message,) = mail.outbox
    link = re.search(r"https?://\S+/password/reset/\S+/", message.body).group()
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    audit(page, "choose a new password")
    shot(page, "security-01-reset-confirm")
    page.get_by_label("New password:", exact=True).fill("Quiet-Lantern-77")
    page.get_by_label("New password confirmation").fill("Quiet-Lantern-77")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Password set")).to_be_visible()

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("Quiet-Lantern-77")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert not csp_errors, csp_errors


def test_main_pages_load_without_csp_violations(
    live_server, page, project, member, login, csp_errors, audit
):
    post = make_post(project=project)
    alt = make_alt(post=post, text="image of a circle")
    make_pair(project=project)
    member("boss", "admin")
    login(page, "boss")
    pid = project.pk
    urls = [
        "/",
        f"/projects/{pid}/",
        f"/projects/{pid}/rate/",
        f"/projects/{pid}/rate/next/",
        f"/projects/{pid}/correct/{alt.pk}/",
        f"/projects/{pid}/llm/",
        f"/projects/{pid}/consensus/",
        f"/rounds/projects/{pid}/",
        "/password/change/",
        "/api/docs/",  # Swagger UI, under its own policy (third-party: axe is not run on it)
    ]
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response.status < 400, (url, response.status)
        page.wait_for_load_state("networkidle")
        if url == "/password/change/":
            audit(page, "password change form")  # axe still runs under the CSP
    assert not csp_errors, csp_errors
