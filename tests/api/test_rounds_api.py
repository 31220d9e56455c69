"""REST API for training rounds: members read, admins start and cancel, every bad input is a
clear 4xx that creates nothing, and a created round is one message on the `gpu` queue."""

import pytest
from rest_framework.test import APIClient

from config.celery import app
from modeltrain.models import RoundStatus, TrainingRound

pytestmark = pytest.mark.django_db

ROUND_TASK = "modeltrain.tasks.round_run_task"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def done_snapshot(project, kind="palt", status="done"):
    """A snapshot row in a given state (starting a round reads only its row, not its files)."""
    from snapshots.models import Snapshot

    return Snapshot.objects.create(
        project=project,
        kind=kind,
        formats=["mcmdpo"],
        filters={},
        status=status,
        checksum="0" * 64 if status == "done" else "",
    )


def drain_gpu_queue() -> list[tuple[dict, object]]:
    """Every message waiting on the broker's `gpu` queue (headers, decoded body), removed."""
    found = []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get("gpu", no_ack=True)) is not None:
            found.append((message.headers, message.decode()))
    return found


@pytest.fixture
def publish_for_real():
    """Messages go to the broker instead of running eagerly (the SQLite default is eager)."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    drain_gpu_queue()  # nothing left over from other tests
    yield
    drain_gpu_queue()
    app.conf.task_always_eager = before


@pytest.fixture
def roles(project, member, make_user):
    return {
        "admin": member("r-admin", "admin"),
        "reviewer": member("r-reviewer", "reviewer"),
        "annotator": member("r-annotator"),
        "outsider": make_user("r-outsider"),
    }


def test_admin_starts_a_round_on_the_gpu_queue_and_reads_it(
    project, roles, publish_for_real, django_capture_on_commit_callbacks
):
    snapshot = done_snapshot(project)
    admin = client_for(roles["admin"])
    url = f"/api/projects/{project.pk}/rounds/"
    body = {
        "snapshot": snapshot.pk,
        "method": "dpo",
        "base_model": "tiny",
        "hyperparameters": {"max_steps": 3, "learning_rate": 0.01},
        "options": {"eval_limit": 2, "llm_prelabel": True},
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin.post(url, body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    round_ = TrainingRound.objects.get()
    assert data["id"] == round_.pk and data["status"] == "queued" and data["method"] == "dpo"
    assert data["hyperparameters"]["max_steps"] == 3
    assert data["options"]["llm_prelabel"] is True and data["options"]["eval_limit"] == 2
    assert data["project"] == project.pk and data["snapshot"] == snapshot.pk

    # Enqueued after commit, once, as a round_run_task message on the gpu queue.
    assert len(callbacks) == 1
    assert drain_gpu_queue() == []
    callbacks[0]()
    messages = drain_gpu_queue()
    assert len(messages) == 1
    headers, (args, kwargs, _embed) = messages[0]
    assert headers["task"] == ROUND_TASK and args == [round_.pk]
    round_.refresh_from_db()
    assert round_.task_id == headers["id"]

    # Admins read it (list, filter, detail with its history), as on the rounds pages; other
    # members are refused (rounds show server paths), outsiders see nothing.
    listed = admin.get(url).json()
    assert [r["id"] for r in listed["results"]] == [round_.pk]
    assert admin.get(url, {"status": "done"}).json()["count"] == 0
    detail = admin.get(f"/api/rounds/{round_.pk}/").json()
    assert detail["status"] == "queued" and detail["history"] == [] and detail["percent"] == 0
    for role in ("reviewer", "annotator"):
        api = client_for(roles[role])
        assert api.get(url).status_code == 403
        assert api.get(f"/api/rounds/{round_.pk}/").status_code == 403
    outsider = client_for(roles["outsider"])
    assert outsider.get(url).status_code == 404
    assert outsider.get(f"/api/rounds/{round_.pk}/").status_code == 404
    assert outsider.post(f"/api/rounds/{round_.pk}/cancel/").status_code == 404

    # Only admins cancel; a queued round is cancelled at once; twice is a clear 409.
    annotator = client_for(roles["annotator"])
    refused = annotator.post(f"/api/rounds/{round_.pk}/cancel/")
    assert refused.status_code == 403 and refused.json()["message"]
    cancelled = admin.post(f"/api/rounds/{round_.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == RoundStatus.CANCELLED
    again = admin.post(f"/api/rounds/{round_.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["message"]


def test_only_admins_start_rounds(project, roles, django_capture_on_commit_callbacks):
    snapshot = done_snapshot(project)
    url = f"/api/projects/{project.pk}/rounds/"
    body = {"snapshot": snapshot.pk, "base_model": "tiny"}
    with django_capture_on_commit_callbacks() as callbacks:
        for role, expected in [("annotator", 403), ("reviewer", 403), ("outsider", 404)]:
            response = client_for(roles[role]).post(url, body, format="json")
            assert response.status_code == expected, (role, response.content)
            assert set(response.json()) == {"message", "extra"}
        assert APIClient().post(url, body, format="json").status_code in (401, 403)
    assert callbacks == [] and TrainingRound.objects.count() == 0


@pytest.fixture
def rounds_world(project, roles):
    """Snapshots in every state a request can name, and rounds to continue from."""
    from preferences.projects import project_create

    other = project_create(name="Someone else's project")
    palt = done_snapshot(project)
    unfinished_round = TrainingRound.objects.create(
        project=project, snapshot=palt, base_model="tiny", status="running"
    )
    return {
        "palt": palt.pk,
        "talt": done_snapshot(project, kind="talt").pk,
        "pending": done_snapshot(project, status="pending").pk,
        "other": done_snapshot(other).pk,
        "unfinished_round": unfinished_round.pk,
    }


BAD_REQUESTS = [
    # (body overrides, status, words the message or field errors must contain)
    ({"snapshot": None}, 400, "snapshot"),
    ({"snapshot": "abc"}, 400, "snapshot"),
    ({"snapshot": 2**70}, 400, "snapshot"),
    ({"snapshot": "other"}, 404, "No snapshot"),
    ({"snapshot": 987654}, 404, "No snapshot"),
    ({"snapshot": "pending"}, 400, "not complete"),
    ({"snapshot": "talt", "method": "dpo"}, 400, "trains on a palt snapshot"),
    ({"method": "ppo"}, 400, "method"),
    ({"paradigm": "sideways"}, 400, "paradigm"),
    ({"negative_type": "fog"}, 400, "fog"),
    ({"base_model": "/no/such/model"}, 400, "does not exist"),
    ({"from_round": 55555, "base_model": ""}, 404, "No round 55555"),
    ({"from_round": "unfinished_round", "base_model": ""}, 400, "no finished checkpoint"),
    ({"from_round": "unfinished_round"}, 400, "either a base model or a previous round"),
    ({"hyperparameters": [1, 2]}, 400, "hyperparameters"),
    ({"hyperparameters": "lr=1"}, 400, "hyperparameters"),
    ({"hyperparameters": {"lr": 1}}, 400, "unknown training options"),
    ({"hyperparameters": {"learning_rate": "fast"}}, 400, '"learning_rate" must be float'),
    ({"hyperparameters": {"max_steps": 2.5}}, 400, '"max_steps" must be int'),
    ({"hyperparameters": {"max_steps": 10**30}}, 400, "between"),
    ({"hyperparameters": {"use_lora": "yes"}}, 400, '"use_lora" must be bool'),
    ({"hyperparameters": {"lr_scheduler": "zigzag"}}, 400, "must be one of"),
    ({"hyperparameters": {"weights": 3}}, 400, "weights"),
    ({"hyperparameters": {"weights": {"nope": 1}}}, 400, "Invalid training options"),
    ({"hyperparameters": {"method": "sft"}}, 400, "its own option"),
    ({"options": {"beams": 2}}, 400, "Unknown round options: beams"),
    ({"options": {"eval_limit": 0}}, 400, '"eval_limit" must be a whole number'),
    ({"options": {"num_beams": True}}, 400, '"num_beams" must be a whole number'),
    ({"options": {"llm_prelabel": "yes"}}, 400, '"llm_prelabel" must be true or false'),
    ({"options": [1]}, 400, "options"),
]


@pytest.mark.parametrize(("overrides", "status", "words"), BAD_REQUESTS)
def test_bad_input_is_a_clear_4xx_and_creates_nothing(
    project, roles, rounds_world, overrides, status, words, django_capture_on_commit_callbacks
):
    body = {"snapshot": rounds_world["palt"], "method": "mcmdpo", "base_model": "tiny"}
    for key, value in overrides.items():
        body[key] = rounds_world.get(value, value) if isinstance(value, str) else value
    body = {k: v for k, v in body.items() if v is not None}
    before = TrainingRound.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(roles["admin"]).post(
            f"/api/projects/{project.pk}/rounds/", body, format="json"
        )
    assert response.status_code == status, response.content
    error = response.json()
    assert set(error) == {"message", "extra"}
    assert words in f"{error['message']} {error['extra']}", error
    assert TrainingRound.objects.count() == before and callbacks == []


def test_malformed_bodies_and_ids(project, roles):
    admin = client_for(roles["admin"])
    url = f"/api/projects/{project.pk}/rounds/"
    garbled = admin.post(url, "{not json", content_type="application/json")
    assert garbled.status_code == 400 and "JSON" in garbled.json()["message"]
    assert admin.get(url, {"status": "sleeping"}).status_code == 400
    assert admin.get(f"/api/rounds/{2**64}/").status_code == 404
    assert admin.get("/api/rounds/424242/").status_code == 404
    assert admin.post(f"/api/projects/{2**64}/rounds/", {}, format="json").status_code == 404


def test_rounds_are_in_the_schema(roles):
    schema = client_for(roles["admin"]).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/projects/{project_id}/rounds/"])
    assert "post" in paths["/api/rounds/{round_id}/cancel/"]
    assert "get" in paths["/api/rounds/{round_id}/"]
    assert "202" in paths["/api/projects/{project_id}/rounds/"]["post"]["responses"]
