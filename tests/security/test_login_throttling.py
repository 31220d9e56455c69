"""django-axes locks out a username on one address after AXES_FAILURE_LIMIT wrong passwords,
on /login/ and on /api/auth/token/, with a clear message; the right password does not get
through during the lockout; other users are not affected."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True  # settings_test turns it off for the test client's login()
    settings.AXES_FAILURE_LIMIT = 3


def test_login_page_locks_out_after_repeated_wrong_passwords(axes_on, make_user):
    make_user("ann")
    make_user("bob")
    client = Client()
    for _ in range(2):
        wrong = client.post("/login/", {"username": "ann", "password": "nope"})
        assert wrong.status_code == 200 and "did not match" in wrong.content.decode()
    locked = client.post("/login/", {"username": "ann", "password": "nope"})
    assert locked.status_code == 429
    assert "Too many failed log-in attempts" in locked.content.decode()
    # The right password does not get through during the lockout ...
    right = client.post("/login/", {"username": "ann", "password": "pw-ann"})
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # ... and another account on the same address is not locked.
    other = Client().post("/login/", {"username": "bob", "password": "pw-bob"})
    assert other.status_code == 302


def test_token_endpoint_locks_out_with_a_json_message(axes_on, make_user):
    make_user("ann")
    api = Client()
    for _ in range(3):
        wrong = api.post("/api/auth/token/", {"username": "ann", "password": "nope"})
        assert wrong.status_code == 400
    locked = api.post("/api/auth/token/", {"username": "ann", "password": "pw-ann"})
    assert locked.status_code == 429
    body = locked.json()
    assert "locked" in body["message"].lower() and body["extra"]["locked_out"] is True
    fine = Client().post("/api/auth/token/", {"username": "bob", "password": "x"})
    assert fine.status_code == 400  # bob is not locked (and does not exist)


def test_a_success_before_the_limit_resets_the_count(axes_on, make_user):
    make_user("ann")
    client = Client()
    for _ in range(2):
        client.post("/login/", {"username": "ann", "password": "nope"})
    assert client.post("/login/", {"username": "ann", "password": "pw-ann"}).status_code == 302
    client.post("/logout/")
    for _ in range(2):
        client.post("/login/", {"username": "ann", "password": "nope"})
    assert client.post("/login/", {"username": "ann", "password": "pw-ann"}).status_code == 302
