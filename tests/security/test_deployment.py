"""Deployment settings: refusal to start on the development key with DEBUG off, a clean
`check --deploy` from environment settings alone, the Content-Security-Policy on every page
and templates that need no inline script or style, password change and reset by email."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": "k8Jq2-vR9xW4nZ7pL3mT6yB1cF5hD0gS8aE2uI4oP7kJ9qW3eR6tY1zX5vN8mB2c",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "altpref.example.org",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "true",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # A clean environment: no ALTPREF_LOCAL_DEV (the test settings set it), no .env values.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_on_the_development_key_with_debug_off():
    for env in ({}, {"SECRET_KEY": "insecure-dev-key-set-SECRET_KEY-in-production"}):
        result = _manage("check", DEBUG="false", **env)
        assert result.returncode != 0
        assert "refusing to start" in result.stderr and "SECRET_KEY" in result.stderr
    assert _manage("check", DEBUG="true").returncode == 0
    assert _manage("check", ALTPREF_LOCAL_DEV="true").returncode == 0  # make run


def test_check_deploy_is_clean_with_production_settings_from_the_environment():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    printed = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)",
        **PRODUCTION,
    )
    assert printed.stdout.strip().splitlines()[-1].split() == [
        "31536000", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"
    ]  # fmt: skip


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client, project, make_user):
    client.force_login(make_user("boss", staff=True))
    for url in ("/login/", "/", f"/projects/{project.pk}/", "/password/change/", "/api/projects/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "unsafe-inline" in docs["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", docs.content.decode())


INLINE = re.compile(r"""<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=["']""", re.I)


def test_templates_have_no_inline_scripts_styles_or_handlers():
    offenders = [
        f"{path.relative_to(REPO)}: {match.group()}"
        for path in (REPO / "templates").rglob("*.html")
        for match in INLINE.finditer(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.django_db
def test_password_change_and_reset_by_email(make_user):
    user = make_user("ann")
    user.email = "ann@example.org"
    user.save()
    client = Client()
    client.force_login(user)
    changed = client.post(
        "/password/change/",
        {
            "old_password": "pw-ann",
            "new_password1": "Sturdy-Horse-42",
            "new_password2": "Sturdy-Horse-42",
        },
    )
    assert changed.status_code == 302 and changed["Location"] == "/password/change/done/"
    user.refresh_from_db()
    assert user.check_password("Sturdy-Horse-42")

    anon = Client()
    sent = anon.post("/password/reset/", {"email": "ann@example.org"})
    assert sent.status_code == 302 and sent["Location"] == "/password/reset/sent/"
    (message,) = mail.outbox
    assert message.to == ["ann@example.org"] and "reset" in message.subject.lower()
    link = re.search(r"http://testserver(/password/reset/\S+/)", message.body).group(1)
    form = anon.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = anon.post(
        form.redirect_chain[-1][0],
        {"new_password1": "Quiet-Lantern-77", "new_password2": "Quiet-Lantern-77"},
    )
    assert done.status_code == 302 and done["Location"] == "/password/reset/complete/"
    user.refresh_from_db()
    assert user.check_password("Quiet-Lantern-77")
    # The link works once.
    assert "does not work" in anon.get(link, follow=True).content.decode()
    # An unknown address sends nothing and says the same (no account probing).
    assert anon.post("/password/reset/", {"email": "nobody@example.org"}).status_code == 302
    assert len(mail.outbox) == 1
