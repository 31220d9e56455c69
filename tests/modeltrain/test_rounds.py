"""Training rounds on the tiny CPU model: start, claim, progress, evaluation, feedback, cancel."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import ApplicationError, NotFound, PermissionDenied
from modeltrain import feedback, quality, services
from modeltrain.models import RoundOutput, RoundStatus, TrainingRound
from preferences.models import CandidatePair

from .conftest import FAST_OPTIONS, dump, fast_hyperparameters


@pytest.fixture
def enqueued(monkeypatch):
    """Round ids round_start enqueued; the message is not sent (these tests call round_run)."""
    sent = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    return sent


def start(loop_data, capture, **kwargs):
    """round_start without running the task (the test drives round_run itself)."""
    values = dict(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters=fast_hyperparameters(),
        options=FAST_OPTIONS,
    )
    values.update(kwargs)
    with capture(execute=True) as callbacks:
        round_ = services.round_start(**values)
    assert len(callbacks) <= 1  # enqueued on commit (captured unless the test commits for real)
    return round_


@pytest.mark.django_db(transaction=True)
def test_round_trains_evaluates_and_feeds_back_once(
    loop_data, enqueued, django_capture_on_commit_callbacks
):
    round_ = start(loop_data, django_capture_on_commit_callbacks)
    assert enqueued == [round_.pk] and round_.status == RoundStatus.QUEUED
    assert round_.hyperparameters["beta"] == 1.0 and round_.paradigm == "both"

    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE
    round_.refresh_from_db()
    assert round_.attempts == 1, dump(round_.error)
    assert round_.step == round_.total_steps == 6
    assert [p["step"] for p in round_.history] == [1, 2, 3, 4, 5, 6]
    assert "image" in round_.history[-1]["margins"]
    assert set(round_.scores) == {
        "bleu_1", "bleu_4", "cumulative_bleu_4", "METEOR", "ROUGE-L", "CIDEr", "edit_distance",
        "sample_count",
    }  # fmt: skip
    assert round_.scores["sample_count"] == 4 and round_.base_scores["sample_count"] == 4
    assert (services.rounds_root() / f"round-{round_.pk}" / "eval_trained.jsonl").exists()

    pairs = CandidatePair.objects.filter(source="model", source_round_id=round_.pk)
    outputs = RoundOutput.objects.filter(round=round_, purpose="feedback")
    # The round's model and its base model each wrote for the 4 feedback posts; every output
    # became a pair or was held back by the quality gate.
    assert outputs.filter(model="trained").count() == outputs.filter(model="base").count() == 4
    assert all(bool(o.pair_id) != bool(o.held_back) for o in outputs)
    for out in outputs.select_related("post"):  # what the tiny model wrote, gated for real
        others = out.post.alt_texts.exclude(origin="model").values_list("text", flat=True)
        verdict = quality.check(out.text, post_text=out.post.context, existing=others)
        assert verdict.reason == out.held_back or out.held_back == "no-opponent", out.text
    assert round_.candidates_created == pairs.count()
    for pair in pairs.select_related("alt_a", "alt_b"):
        assert pair.alt_a.origin == "model" and pair.alt_a.source_round_id == round_.pk
        assert pair.alt_b.origin != "model"

    # A redelivered message for a finished round does nothing; re-running feedback adds nothing.
    before = (pairs.count(), RoundOutput.objects.count())
    assert services.round_run(round_id=round_.pk) == "skipped"
    feedback.round_feed_back(round_)
    assert (pairs.count(), RoundOutput.objects.count()) == before
    round_.refresh_from_db()
    assert round_.attempts == 1


@pytest.mark.django_db
def test_round_start_rejects_bad_requests(
    loop_data, member, enqueued, django_capture_on_commit_callbacks
):
    snap = loop_data["snapshot"].pk
    with pytest.raises(ApplicationError, match="Unknown method"):
        start(loop_data, django_capture_on_commit_callbacks, method="ppo")
    with pytest.raises(ApplicationError, match="unknown training options"):
        start(loop_data, django_capture_on_commit_callbacks, hyperparameters={"lr": 1})
    with pytest.raises(ApplicationError, match="paradigm"):
        start(loop_data, django_capture_on_commit_callbacks, paradigm="sideways")
    with pytest.raises(NotFound):
        start(loop_data, django_capture_on_commit_callbacks, snapshot_id=snap + 999)
    with pytest.raises(NotFound):
        start(loop_data, django_capture_on_commit_callbacks, base_model="", from_round_id=12345)
    with pytest.raises(ApplicationError, match="does not exist"):
        start(loop_data, django_capture_on_commit_callbacks, base_model="/no/such/model")
    with pytest.raises(PermissionDenied):
        start(loop_data, django_capture_on_commit_callbacks, user=member("rater"))
    with pytest.raises(ApplicationError, match="Unknown round options"):
        start(loop_data, django_capture_on_commit_callbacks, options={"beams": 2})
    assert TrainingRound.objects.count() == 0  # nothing half-created


@pytest.mark.django_db
def test_claim_is_conditional_and_attempts_are_bounded(
    loop_data, enqueued, django_capture_on_commit_callbacks
):
    round_ = start(loop_data, django_capture_on_commit_callbacks)
    claimed = services.round_claim(round_id=round_.pk)
    assert claimed.status == RoundStatus.RUNNING and claimed.attempts == 1
    # a second delivery while the first worker's heartbeat is fresh: come back later
    with pytest.raises(services.RoundBusy):
        services.round_claim(round_id=round_.pk)
    # the worker died (stale heartbeat): the redelivered message takes the round over
    old = timezone.now() - timedelta(minutes=5)
    TrainingRound.objects.filter(pk=round_.pk).update(heartbeat_at=old)
    assert services.round_claim(round_id=round_.pk).attempts == 2
    TrainingRound.objects.filter(pk=round_.pk).update(heartbeat_at=old)
    assert services.round_claim(round_id=round_.pk).attempts == 3
    # it killed its worker max_attempts times: fail with a message instead of looping
    TrainingRound.objects.filter(pk=round_.pk).update(heartbeat_at=old)
    assert services.round_claim(round_id=round_.pk) is None
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FAILED
    assert "stopped without finishing 3 times (limit 3)" in round_.error


@pytest.mark.django_db
def test_cancel(loop_data, enqueued, django_capture_on_commit_callbacks):
    user = loop_data["user"]
    queued = start(loop_data, django_capture_on_commit_callbacks)
    assert services.round_cancel(user=user, round_id=queued.pk).status == RoundStatus.CANCELLED
    assert services.round_run(round_id=queued.pk) == "skipped"  # its message is a no-op
    with pytest.raises(ApplicationError, match="already cancelled"):
        services.round_cancel(user=user, round_id=queued.pk)

    running = start(loop_data, django_capture_on_commit_callbacks)
    services.round_claim(round_id=running.pk)
    services.round_cancel(user=user, round_id=running.pk)
    running.refresh_from_db()
    assert running.status == RoundStatus.RUNNING and running.cancel_requested
    # the training loop asks between steps and stops; the round ends cancelled, checkpointed
    TrainingRound.objects.filter(pk=running.pk).update(status=RoundStatus.RUNNING)
    assert services._run_phases(running) == RoundStatus.CANCELLED
    running.refresh_from_db()
    assert running.status == RoundStatus.CANCELLED and 0 < running.step < 6
