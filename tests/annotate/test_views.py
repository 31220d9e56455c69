"""Pages: login, per-project access, admin for staff only, escaping, image permissions."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from annotate.models import Image
from preferences.imports import altdata_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(project, tmp_path, make_png):
    (tmp_path / "p.png").write_bytes(make_png())
    hostile = '<script>alert("x")</script> &amp; 🙂'
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"image": "p.png", "context": hostile, "chosen": hostile, "rejected": "plain"})
    )
    altdata_import(paths=[path], project=project)
    return hostile


def _login(client, user):
    assert client.login(username=user.username, password="pw-" + user.username)


def test_login_page_and_redirect_for_anonymous(client):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="password"' in page.content
    home = client.get(reverse("annotate:home"))
    assert home.status_code == 302 and reverse("login") in home["Location"]


def test_login_logout_round_trip(client, member):
    member("ann")
    response = client.post(reverse("login"), {"username": "ann", "password": "pw-ann"})
    assert response.status_code == 302
    assert client.get(reverse("annotate:home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("annotate:home")).status_code == 302


def test_wrong_password_is_refused_with_a_message(client, member):
    member("ann")
    response = client.post(reverse("login"), {"username": "ann", "password": "nope"})
    assert response.status_code == 200 and b"did not match" in response.content


def test_member_sees_only_their_projects(client, project, member, make_user):
    from preferences.projects import project_create

    secret = project_create(name="Secret campaign")
    _login(client, member("ann"))
    home = client.get(reverse("annotate:home")).content.decode()
    assert "Test project" in home and "Secret campaign" not in home
    assert client.get(reverse("annotate:project_detail", args=[project.id])).status_code == 200
    response = client.get(reverse("annotate:project_detail", args=[secret.id]))
    assert response.status_code == 404 and "Secret campaign" not in response.content.decode()


def test_admin_site_is_for_staff_only(client, member, make_user):
    _login(client, member("ann", "admin"))  # a project admin is not staff
    assert client.get("/admin/").status_code == 302
    staff = make_user("boss", staff=True)
    client.logout()
    _login(client, staff)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/annotate/post/").status_code == 200


def test_hostile_text_renders_as_text(client, project, member, imported):
    _login(client, member("ann"))
    html = client.get(reverse("annotate:project_detail", args=[project.id])).content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;amp; 🙂" in html


def test_images_are_served_only_to_members(client, project, member, make_user, imported):
    image = Image.objects.get()
    url = reverse("annotate:image_file", args=[image.sha256])
    _login(client, make_user("stranger"))
    assert client.get(url).status_code == 404
    client.logout()
    _login(client, member("ann"))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_forms_need_csrf(member):
    member("ann")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "ann", "password": "pw-ann"})
    assert response.status_code == 403
