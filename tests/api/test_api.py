"""REST API: roles per project, idempotent judgements, snapshot export and download, 4xx errors."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from preferences.consensus.models import Consensus
from preferences.consensus.services import consensus_refresh


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


def test_token_obtain_and_anonymous_refused(labelled):
    anon = APIClient()
    assert anon.get("/api/projects/").status_code in (401, 403)
    r = anon.post("/api/auth/token/", {"username": "boss", "password": "pw-boss"}, format="json")
    assert r.status_code == 200
    authed = APIClient()
    authed.credentials(HTTP_AUTHORIZATION=f"Token {r.json()['token']}")
    assert authed.get("/api/projects/").json()["results"][0]["role"] == "admin"


def test_annotator_reads_items_with_pagination_and_filters(labelled):
    api = client_for(labelled.annotator)
    pid = labelled.project.pk
    posts = api.get(
        f"/api/projects/{pid}/posts/", {"limit": 5, "split": "train", "platform": "pinterest"}
    ).json()
    assert posts["count"] == 10 and len(posts["results"]) == 5 and posts["next"]
    pair = labelled.pairs["majority_a"]
    pairs = api.get(f"/api/projects/{pid}/pairs/", {"post": pair.post_id, "source": "model"}).json()
    assert [p["id"] for p in pairs["results"]] == [pair.pk]
    alts = api.get(
        f"/api/projects/{pid}/alt-texts/", {"post": pair.post_id, "origin": "model"}
    ).json()
    assert alts["count"] == 2
    consensus = api.get(f"/api/projects/{pid}/pairs/{pair.pk}/consensus/").json()
    stored = Consensus.objects.get(pair=pair, facet__key="overall")
    assert consensus == [
        {
            "facet": "overall",
            "label": "A",
            "confidence": round(stored.confidence, 6),
            "votes": 4,
            "method": "weighted",
        }
    ]
    # Annotators see only their own judgements; reviewers see everyone's.
    own = api.get(f"/api/projects/{pid}/judgements/").json()["results"]
    assert own and {j["rater_user"] for j in own} == {labelled.annotator.pk}
    everyone = client_for(labelled.reviewer).get(f"/api/projects/{pid}/judgements/").json()
    assert everyone["count"] > len(own)


def test_non_member_gets_404_everywhere(labelled, outsider, django_capture_on_commit_callbacks):
    from snapshots.services import snapshot_create, snapshot_filters_build

    with django_capture_on_commit_callbacks(execute=False):
        snap = snapshot_create(
            user=labelled.admin,
            project=labelled.project,
            kind="palt",
            filters=snapshot_filters_build(kind="palt", project=labelled.project),
            formats=["mcmdpo"],
        )
    api = client_for(outsider)
    pid, pair = labelled.project.pk, labelled.pairs["majority_a"].pk
    for url in [
        f"/api/projects/{pid}/",
        f"/api/projects/{pid}/posts/",
        f"/api/projects/{pid}/pairs/{pair}/consensus/",
        f"/api/projects/{pid}/snapshots/",
        f"/api/snapshots/{snap.pk}/",
        f"/api/snapshots/{snap.pk}/files/palt.json",
    ]:
        r = api.get(url)
        assert r.status_code == 404, url
        assert "message" in r.json()
    r = api.post(
        f"/api/projects/{pid}/judgements/",
        {"pair": pair, "facet": "overall", "choice": "A"},
        format="json",
    )
    assert r.status_code == 404
    assert api.get("/api/projects/").json()["count"] == 0


def test_judgements_are_idempotent_and_role_checked(labelled, member):
    newcomer = member("newcomer", "annotator")
    api = client_for(newcomer)
    url = f"/api/projects/{labelled.project.pk}/judgements/"
    body = {
        "pair": labelled.pairs["split"].pk,
        "facet": "overall",
        "choice": "B",
        "client_key": "k-1",
    }
    first = api.post(url, body, format="json")
    assert first.status_code == 201, first.json()
    again = api.post(url, body, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = api.post(url, {**body, "choice": "A", "client_key": "k-2"}, format="json")
    assert changed.status_code == 409 and "undo" in changed.json()["message"]
    adjudicate = api.post(url, {**body, "kind": "adjudication"}, format="json")
    assert adjudicate.status_code == 403 and "reviewer" in adjudicate.json()["message"]
    by_reviewer = client_for(labelled.reviewer).post(
        url, {**body, "kind": "adjudication"}, format="json"
    )
    consensus_refresh(project_id=labelled.project.pk)  # what the task queued on commit does
    assert by_reviewer.status_code == 201
    # The split vote now has an adjudicated label.
    consensus = api.get(
        f"/api/projects/{labelled.project.pk}/pairs/{body['pair']}/consensus/"
    ).json()
    assert consensus[0]["method"] == "adjudication" and consensus[0]["label"] == "B"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"facet": "overall", "choice": "A"}, "pair"),
        ({"pair": "x", "facet": "overall", "choice": "A"}, "pair"),
        ({"pair": 1, "facet": "overall", "choice": "maybe"}, "choice"),
        ({"pair": 1, "facet": "overall", "choice": "A", "seconds_spent": -1}, "seconds_spent"),
        ({"pair": 1, "facet": "overall", "choice": "A", "kind": "llm"}, "kind"),
        ({"pair": 1, "facet": "overall", "choice": "A", "client_key": "k" * 65}, "client_key"),
    ],
)
def test_bad_judgement_input_is_a_400_naming_the_field(labelled, body, field):
    r = client_for(labelled.annotator).post(
        f"/api/projects/{labelled.project.pk}/judgements/", body, format="json"
    )
    assert r.status_code == 400
    assert r.json()["message"] == "Validation error" and field in r.json()["extra"]["fields"]


def test_other_bad_input_gets_clear_messages(labelled):
    api = client_for(labelled.admin)
    pid = labelled.project.pk
    r = api.post(f"/api/projects/{pid}/judgements/", "{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = api.post(
        f"/api/projects/{pid}/judgements/",
        {"pair": 10**9, "facet": "overall", "choice": "A"},
        format="json",
    )
    assert r.status_code == 404 and r.json()["message"] == "No such pair in this project."
    r = api.post(
        f"/api/projects/{pid}/judgements/",
        {"pair": labelled.pairs["tie"].pk, "facet": "nope", "choice": "A"},
        format="json",
    )
    assert r.status_code == 400 and 'no facet "nope"' in r.json()["message"]
    assert api.get(f"/api/projects/{pid}/posts/", {"platform": "myspace"}).status_code == 400
    assert api.get(f"/api/projects/{pid}/pairs/", {"post": "abc"}).status_code == 400
    assert api.get(f"/api/projects/{10**30}/").status_code == 404
    huge = api.get(f"/api/projects/{pid}/posts/", {"limit": 10**24, "offset": 10**24})
    assert huge.status_code == 200 and huge.json()["results"] == []
    assert len(api.get(f"/api/projects/{pid}/posts/", {"limit": 10**24}).json()["results"]) == 40
    for body, message in [
        ({"kind": "palt", "facets": ["nope"]}, "Unknown facet"),
        ({"kind": "palt", "min_confidence": 3}, "Validation error"),
        ({"kind": "xyz"}, "Validation error"),
        ({"kind": "palt", "formats": ["csv"]}, "Validation error"),
    ]:
        r = api.post(f"/api/projects/{pid}/snapshots/", body, format="json")
        assert r.status_code == 400 and r.json()["message"].startswith(message), (body, r.json())


def test_admin_exports_and_downloads_annotator_cannot(
    labelled, settings, django_capture_on_commit_callbacks
):
    from snapshots.services import snapshot_run

    pid = labelled.project.pk
    annotator = client_for(labelled.annotator)
    r = annotator.post(f"/api/projects/{pid}/snapshots/", {"kind": "palt"}, format="json")
    assert r.status_code == 403 and "admin" in r.json()["message"]
    assert client_for(labelled.reviewer).get(f"/api/projects/{pid}/snapshots/").status_code == 403

    admin = client_for(labelled.admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = admin.post(
            f"/api/projects/{pid}/snapshots/", {"kind": "palt", "formats": ["all"]}, format="json"
        )
    assert r.status_code == 202 and r.json()["status"] == "pending"
    assert len(callbacks) == 1  # the task is enqueued only after the row is committed
    sid = r.json()["id"]
    early = admin.get(f"/api/snapshots/{sid}/files/palt.json")
    assert early.status_code == 409 and "not finished" in early.json()["message"]

    snapshot_run(snapshot_id=sid)  # what the worker does (the worker itself: tests/snapshots)
    status = admin.get(f"/api/snapshots/{sid}/").json()
    assert status["status"] == "done" and status["progress"] == 100
    assert set(status["files"]) == {"palt.json", "palt.jsonl", "palt.parquet", "manifest.json"}
    download = admin.get(f"/api/snapshots/{sid}/files/palt.json")
    assert download.status_code == 200 and download.streaming
    assert "attachment" in download["Content-Disposition"]
    data = json.loads(b"".join(download.streaming_content))
    assert len(data) == 23
    assert annotator.get(f"/api/snapshots/{sid}/files/palt.json").status_code == 403
    assert admin.get(f"/api/snapshots/{sid}/files/../../settings.py").status_code == 404
    assert admin.get(f"/api/snapshots/{sid}/files/nothing.json").status_code == 404


def test_schema_and_local_docs(labelled):
    api = client_for(labelled.annotator)
    schema = api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert (
        "/api/projects/{project_id}/judgements/" in paths
        and "/api/snapshots/{snapshot_id}/" in paths
    )
    for page in ("/api/docs/", "/api/redoc/"):
        html = api.get(page).content.decode()
        assert "drf_spectacular_sidecar" in html
        assert "cdn." not in html and "unpkg" not in html
