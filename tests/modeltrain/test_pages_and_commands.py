"""The rounds pages (htmx polling that stops, SVG curve, score table, candidates) and the
train_round command running the whole loop through Celery in eager mode (the `make run` path)."""

import json

import pytest
from django.core.management import CommandError, call_command

from config.celery import app
from modeltrain import services
from modeltrain.models import RoundStatus, TrainingRound
from preferences.models import CandidatePair

from .conftest import FAST_OPTIONS, fast_hyperparameters

POLL = 'hx-trigger="every 2s"'


@pytest.fixture
def eager():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_rounds_pages(loop_data, client, member, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_enqueue", queued.append)
    project, user = loop_data["project"], loop_data["user"]
    client.force_login(user)
    page = client.get(f"/rounds/projects/{project.pk}/")
    assert page.status_code == 200 and b"Start a round" in page.content

    bad = client.post(
        f"/rounds/projects/{project.pk}/start",
        {"snapshot": loop_data["snapshot"].pk, "method": "mcmdpo", "hyperparameters": "{oops"},
    )
    assert bad.status_code == 400 and b"must be a JSON object" in bad.content
    assert b"{oops" in bad.content  # what was typed is shown again
    assert TrainingRound.objects.count() == 0

    hyper = {**fast_hyperparameters(), "max_steps": 4}
    started = client.post(
        f"/rounds/projects/{project.pk}/start",
        {
            "snapshot": loop_data["snapshot"].pk,
            "method": "mcmdpo",
            "base_model": "tiny",
            "hyperparameters": json.dumps(hyper),
        },
    )
    round_ = TrainingRound.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/rounds/{round_.pk}/"
    assert queued == [round_.pk]

    detail = client.get(f"/rounds/{round_.pk}/")
    assert POLL in detail.content.decode() and "Queued" in detail.content.decode()
    fragment = client.get(f"/rounds/{round_.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert POLL in fragment and "<html" not in fragment

    TrainingRound.objects.filter(pk=round_.pk).update(options=FAST_OPTIONS)
    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE
    fragment = client.get(f"/rounds/{round_.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert POLL not in fragment  # finished: the fragment no longer polls
    assert '<svg id="round-curve"' in fragment and fragment.count("<polyline") >= 2
    assert 'id="round-scores"' in fragment and "CIDEr" in fragment and "Base model" in fragment
    assert (
        f"/snapshots/{loop_data['snapshot'].pk}/"
        in client.get(f"/rounds/{round_.pk}/").content.decode()
    )
    pair = CandidatePair.objects.filter(source_round_id=round_.pk).first()
    if pair is not None:
        assert f"/review/{pair.pk}/" in fragment

    cancel = client.post(f"/rounds/{round_.pk}/cancel", follow=True)
    assert b"already done" in cancel.content

    client.force_login(member("just-a-rater"))
    assert client.get(f"/rounds/{round_.pk}/").status_code in (403, 404)
    assert client.get(f"/rounds/projects/{project.pk}/").status_code in (403, 404)


@pytest.mark.django_db(transaction=True)
def test_train_round_command_runs_the_loop_and_continues_from_a_round(
    loop_data, tmp_path, django_user_model, eager, capsys
):
    django_user_model.objects.create_superuser("boss", password="pw")
    config = tmp_path / "round.json"
    config.write_text(json.dumps({**fast_hyperparameters(), "options": FAST_OPTIONS}))
    snapshot = str(loop_data["snapshot"].pk)
    call_command(
        "train_round", "--snapshot", snapshot, "--base", "tiny", "--config", str(config), "--wait"
    )
    first = TrainingRound.objects.get()
    assert first.status == RoundStatus.DONE and first.scores["sample_count"] == 4
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["round"] == first.pk

    # a DPO round continuing from the first one's (LoRA) model, compared with it on the page
    call_command(
        "train_round", "--snapshot", snapshot, "--method", "dpo", "--from-round", str(first.pk),
        "--config", str(config), "--wait",
    )  # fmt: skip
    second = TrainingRound.objects.exclude(pk=first.pk).get()
    assert second.status == RoundStatus.DONE, second.error
    assert second.from_round_id == first.pk and second.method == "dpo"
    assert (services.rounds_root() / f"round-{second.pk}" / "base-merged" / "config.json").exists()

    with pytest.raises(CommandError, match="not allowed with"):
        call_command(
            "train_round", "--snapshot", snapshot, "--from-round", str(first.pk),
            "--base", "tiny",
        )  # fmt: skip
    config.write_text("[1, 2]")
    with pytest.raises(CommandError, match="JSON object"):
        call_command("train_round", "--snapshot", snapshot, "--config", str(config))
