"""The project console with Django's test client: who may do what, and upload imports (eager
by default, and on a real worker) with the per-record error report."""

import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import AltText, Membership, Post
from annotate.services import membership_set
from console.models import ImportJob
from preferences.models import CandidatePair, Facet
from preferences.projects import project_create
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _records(bad_image: bool = True) -> bytes:
    rows = [
        {
            "image": "one.png",
            "context": "Bake sale today",
            "chosen": "A red cake.",
            "rejected": "cake",
        },
        {"image": "two.png", "context": "New logo", "alt_text": "A blue circle logo."},
        # Bad: no context field at all, and an image that was not uploaded.
        {"image": "missing.png", "alt_text": "orphan"},
    ]
    if not bad_image:
        rows.pop()
    return "\n".join(json.dumps(r) for r in rows).encode()


def _upload(client, project, *, data=None, images=None, **extra):
    data = data if data is not None else [SimpleUploadedFile("posts.jsonl", _records())]
    images = (
        images
        if images is not None
        else [
            SimpleUploadedFile("one.png", png_bytes((200, 0, 0)), content_type="image/png"),
            SimpleUploadedFile("two.png", png_bytes((0, 0, 200)), content_type="image/png"),
        ]
    )
    return client.post(
        f"/projects/{project.pk}/imports/", {"data": data, "images": images, **extra}
    )


@pytest.fixture
def eager_celery():
    """Tasks run at commit in this process, as under `make run` (CI's second pass sets a broker)."""
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def admin_of(make_user):
    def make(project, username="boss"):
        user = make_user(username)
        membership_set(project=project, user=user, role="admin")
        return user

    return make


def test_annotator_gets_403_on_every_console_page(client, project, member):
    member("ann")
    client.login(username="ann", password="pw-ann")
    for url in ["settings/", "members/", "imports/"]:
        assert client.get(f"/projects/{project.pk}/{url}").status_code == 403
    assert _upload(client, project).status_code == 403
    assert (
        client.post(
            f"/projects/{project.pk}/members/add/", {"username": "ann", "role": "admin"}
        ).status_code
        == 403
    )
    assert client.get("/projects/new/").status_code == 403
    assert client.post("/projects/new/", {"name": "Mine"}).status_code == 403
    assert Membership.objects.get(user__username="ann").role == "annotator"
    assert not ImportJob.objects.exists()


def test_one_projects_admin_cannot_touch_another(client, project, admin_of):
    other = project_create(name="Other project")
    admin_of(other, "otherboss")
    client.login(username="otherboss", password="pw-otherboss")
    for url in ["settings/", "members/", "imports/"]:
        assert client.get(f"/projects/{project.pk}/{url}").status_code == 404
    assert (
        client.post(
            f"/projects/{project.pk}/settings/", {"action": "project", "name": "Hijacked"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/projects/{project.pk}/members/add/", {"username": "otherboss", "role": "admin"}
        ).status_code
        == 404
    )
    assert _upload(client, project).status_code == 404
    project.refresh_from_db()
    assert project.name == "Test project"
    assert not Membership.objects.filter(project=project).exists()


def test_admin_creates_and_edits_a_project(client, project, admin_of):
    admin_of(project)
    client.login(username="boss", password="pw-boss")
    response = client.post(
        "/projects/new/",
        {"name": "Alt 2027", "guidelines": "# Be kind", "platform": ["twitter"], "overlap": "3"},
    )
    new = Membership.objects.get(user__username="boss", project__name="Alt 2027").project
    assert response.status_code == 302 and response["Location"] == f"/projects/{new.pk}/settings/"
    assert (new.platforms, new.overlap, new.guidelines) == (["twitter"], 3, "# Be kind")
    assert Facet.objects.filter(project=new).count() == 5

    bad = client.post("/projects/new/", {"name": "Alt 2027", "overlap": "1"})
    assert bad.status_code == 400 and "already exists" in bad.content.decode()
    bad = client.post("/projects/new/", {"name": "X", "overlap": "0"})
    assert bad.status_code == 400 and "between 1 and 50" in bad.content.decode()

    url = f"/projects/{new.pk}/settings/"
    client.post(
        url,
        {
            "action": "project",
            "name": "Alt 2028",
            "platform": ["pinterest", "twitter"],
            "overlap": "2",
        },
    )
    new.refresh_from_db()
    assert (new.name, new.platforms, new.overlap) == ("Alt 2028", ["twitter", "pinterest"], 2)

    concise = Facet.objects.get(project=new, key="concise")
    facets = {f"label-{f.pk}": f.label for f in Facet.objects.filter(project=new)}
    facets.update({f"question-{f.pk}": f.question for f in Facet.objects.filter(project=new)})
    actives = {f"active-{f.pk}": "on" for f in Facet.objects.filter(project=new) if f != concise}
    overall = Facet.objects.get(project=new, key="overall")
    required = {f"required-{overall.pk}": "on"}  # every other facet becomes optional
    client.post(
        url, {"action": "facets", **facets, **actives, **required, f"label-{concise.pk}": "Short"}
    )
    concise.refresh_from_db()
    assert (concise.label, concise.is_active) == ("Short", False)
    assert set(Facet.objects.filter(project=new, required=True).values_list("key", flat=True)) == {
        "overall"
    }
    # Nothing required would let a rater submit an empty sheet: refused, nothing saved.
    refused = client.post(url, {"action": "facets", **facets, **actives})
    assert refused.status_code == 400 and "at least one active facet required" in (
        refused.content.decode()
    )
    assert Facet.objects.get(pk=overall.pk).required
    client.post(
        url,
        {"action": "facet-add", "key": "tone", "label": "Tone", "question": "Which fits the tone?"},
    )
    assert Facet.objects.filter(project=new, key="tone", is_active=True).exists()
    bad = client.post(
        url, {"action": "facet-add", "key": "Bad Key!", "label": "x", "question": "y"}
    )
    assert bad.status_code == 400


def test_members_added_changed_removed_and_the_last_admin_stays(
    client, project, admin_of, make_user
):
    boss = admin_of(project)
    make_user("newbie")
    client.login(username="boss", password="pw-boss")
    add = f"/projects/{project.pk}/members/add/"
    client.post(add, {"username": "newbie", "role": "reviewer"})
    newbie = Membership.objects.get(project=project, user__username="newbie")
    assert newbie.role == "reviewer"
    page = client.get(f"/projects/{project.pk}/members/").content.decode()
    assert "newbie" in page and "Reviewer" in page

    response = client.post(add, {"username": "nobody", "role": "annotator"}, follow=True)
    assert "No user is called" in response.content.decode()

    # The only admin can neither demote nor remove themselves.
    mine = Membership.objects.get(project=project, user=boss)
    client.post(add, {"username": "boss", "role": "annotator"})
    client.post(f"/projects/{project.pk}/members/{mine.pk}/remove/")
    mine.refresh_from_db()
    assert mine.role == "admin"

    client.post(f"/projects/{project.pk}/members/{newbie.pk}/remove/")
    assert not Membership.objects.filter(pk=newbie.pk).exists()


def test_upload_import_keeps_good_records_and_reports_the_bad_one(
    client, project, admin_of, settings, eager_celery, django_capture_on_commit_callbacks
):
    admin_of(project)
    client.login(username="boss", password="pw-boss")
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, project, platform="twitter")
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/imports/{job.pk}/"
    # Eager (the embedded default): the task ran at commit.
    assert job.status == "done", job.message
    assert (job.report["imported"], job.report["rejected"]) == (2, 1)
    assert job.report["errors"][0]["file"] == "posts.jsonl"
    assert job.report["errors"][0]["record"] == 3
    assert Post.objects.filter(project=project).count() == 2
    assert CandidatePair.objects.filter(post__project=project).count() == 1
    assert set(AltText.objects.values_list("text", flat=True)) == {
        "A red cake.",
        "cake",
        "A blue circle logo.",
    }
    # The upload itself is kept under MEDIA_ROOT.
    stored = Path(settings.MEDIA_ROOT) / job.folder
    assert (stored / "data" / "posts.jsonl").read_bytes() == _records()
    assert (stored / "images" / "one.png").is_file()

    page = client.get(response["Location"]).content.decode()
    assert "Rejected records" in page and "posts.jsonl" in page
    assert job.report["errors"][0]["reason"] in page.replace("&quot;", '"').replace("&#x27;", "'")


def test_upload_refuses_absolute_image_paths_and_wrong_files(
    client, project, admin_of, make_png, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    admin_of(project)
    client.login(username="boss", password="pw-boss")
    outside = tmp_path / "server-side.png"  # a real image on the server, outside the upload
    outside.write_bytes(make_png())
    row = {"image": str(outside), "context": "c", "alt_text": "x"}
    with django_capture_on_commit_callbacks(execute=True):
        _upload(
            client,
            project,
            data=[SimpleUploadedFile("a.jsonl", json.dumps(row).encode())],
            images=[],
        )
    job = ImportJob.objects.get()
    assert (
        job.report["rejected"] == 1 and "absolute image paths" in job.report["errors"][0]["reason"]
    )
    assert not Post.objects.exists()

    bad = _upload(client, project, data=[SimpleUploadedFile("notes.txt", b"hi")], images=[])
    assert bad.status_code == 400 and ".json, .jsonl or .csv" in bad.content.decode()
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_upload_import_runs_on_a_real_worker(client, project, admin_of, celery_worker_running):
    admin_of(project)
    client.login(username="boss", password="pw-boss")
    _upload(client, project, data=[SimpleUploadedFile("p.jsonl", _records(bad_image=False))])
    job = ImportJob.objects.get()
    deadline = time.monotonic() + 60
    while job.status not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.report["imported"], job.report["rejected"]) == (2, 0)
    assert Post.objects.filter(project=project).count() == 2


def test_django_admin_shows_alt_texts_read_only(client, project, make_user):
    import hashlib

    from tests.ui.factories import make_alt, make_post

    make_user("root", staff=True)
    alt = make_alt(post=make_post(project=project), text="A red circle logo.")
    client.login(username="root", password="pw-root")
    url = f"/admin/annotate/alttext/{alt.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert (
        "A red circle logo." in body and hashlib.sha256(b"A red circle logo.").hexdigest() in body
    )
    assert 'name="text"' not in body and 'name="text_sha256"' not in body
    assert client.post(url, {"text": "Changed", "text_sha256": "0" * 64}).status_code == 403
    alt.refresh_from_db()
    assert alt.text == "A red circle logo."
    assert client.get("/admin/annotate/alttext/add/").status_code == 403


def test_images_in_a_zip_keep_their_folders_and_bad_archives_are_refused(
    client, project, admin_of, eager_celery, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    admin_of(project)
    client.login(username="boss", password="pw-boss")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("photos/one.png", png_bytes((200, 0, 0)))
        archive.writestr("two.png", png_bytes((0, 0, 200)))
        archive.writestr("notes.txt", "skipped")
    rows = [
        {"image": "photos/one.png", "context": "One", "alt_text": "A red square."},
        {"image": "two.png", "context": "Two", "alt_text": "A blue square."},
    ]
    data = SimpleUploadedFile("p.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    with django_capture_on_commit_callbacks(execute=True):
        _upload(
            client, project, data=[data], images=[SimpleUploadedFile("imgs.zip", buf.getvalue())]
        )
    job = ImportJob.objects.get()
    assert (job.image_count, job.report["imported"], job.report["rejected"]) == (2, 2, 0)

    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../escape.png", png_bytes())
    bad = _upload(
        client,
        project,
        data=[SimpleUploadedFile("p.jsonl", b"{}")],
        images=[SimpleUploadedFile("evil.zip", evil.getvalue())],
    )
    assert bad.status_code == 400 and "refused the path" in bad.content.decode()
    bad = _upload(
        client,
        project,
        data=[SimpleUploadedFile("p.jsonl", b"{}")],
        images=[SimpleUploadedFile("broken.zip", b"not a zip")],
    )
    assert bad.status_code == 400 and "not a readable .zip" in bad.content.decode()
    assert ImportJob.objects.count() == 1
