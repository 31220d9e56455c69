"""Pages: an admin exports from the snapshots page, watches progress, downloads files."""

import pytest

from snapshots.models import Snapshot


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_admin_exports_and_downloads_from_the_page(
    labelled, as_user, django_capture_on_commit_callbacks
):
    from snapshots.services import snapshot_run

    client = as_user(labelled.admin)
    url = f"/projects/{labelled.project.pk}/snapshots/"
    page = client.get(url)
    assert page.status_code == 200 and b"New snapshot" in page.content
    with django_capture_on_commit_callbacks(execute=False):
        r = client.post(
            url + "new", {"kind": "talt", "format": ["mcmdpo", "jsonl"], "split": ["train"]}
        )
    assert r.status_code == 302
    snapshot = Snapshot.objects.get()
    assert snapshot.kind == "talt" and snapshot.formats == ["mcmdpo", "jsonl"]

    # While it waits, the row polls for its status.
    row = client.get(f"/snapshots/{snapshot.pk}/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in row.content and b"Waiting for a worker" in row.content

    snapshot_run(snapshot_id=snapshot.pk)
    detail = client.get(f"/snapshots/{snapshot.pk}/").content.decode()
    assert "talt.json" in detail and "talt_llava.json" in detail and "every 2s" not in detail
    download = client.get(f"/snapshots/{snapshot.pk}/files/talt.jsonl")
    assert download.status_code == 200
    assert len(b"".join(download.streaming_content).splitlines()) == 20


def test_bad_form_input_is_shown_and_nothing_is_created(labelled, as_user):
    client = as_user(labelled.admin)
    r = client.post(
        f"/projects/{labelled.project.pk}/snapshots/new", {"kind": "palt", "min_confidence": "7"}
    )
    assert r.status_code == 400 and b"between 0 and 1" in r.content
    assert not Snapshot.objects.exists()


def test_annotators_and_outsiders_cannot_use_the_page(labelled, as_user, make_user):
    url = f"/projects/{labelled.project.pk}/snapshots/"
    assert as_user(labelled.annotator).get(url).status_code == 403
    assert as_user(make_user("nobody")).get(url).status_code == 404
