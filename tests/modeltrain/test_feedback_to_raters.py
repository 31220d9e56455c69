"""Where a round's new pairs go: the LLM judge pre-labels exactly them when the round asks
(options["llm_prelabel"], fake Gemini server), a round without a configured judge says so and
still finishes, and the pairs come up in a rater's queue (preferences.rating.queue.assignment_next)."""

import pytest

from config.celery import app
from modeltrain import services
from modeltrain.models import RoundStatus, TrainingRound
from preferences.labelers.models import LabelRun
from preferences.models import CandidatePair, Judgement

from .conftest import FAST_OPTIONS, dump, fast_hyperparameters

pytestmark = pytest.mark.django_db(transaction=True)

# The smallest round that still trains, evaluates one post and writes three candidates.
SMALL = {**FAST_OPTIONS, "evaluate_base": False, "eval_limit": 1, "feedback_limit": 3}


@pytest.fixture
def eager():
    """Tasks a round enqueues (the LLM run's batches) run in-line, on any broker."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def run_round(loop_data, monkeypatch, **options) -> TrainingRound:
    """Start a round (its gpu message is not sent) and run it here, as the gpu worker would."""
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters=fast_hyperparameters(max_steps=2),
        options={**SMALL, **options},
    )
    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE, dump(
        TrainingRound.objects.get(pk=round_.pk).error
    )
    round_.refresh_from_db()
    return round_


def test_the_llm_judge_pre_labels_only_the_rounds_new_pairs(
    loop_data, gemini_on, eager, monkeypatch
):
    imported = set(CandidatePair.objects.values_list("id", flat=True))
    round_ = run_round(loop_data, monkeypatch, llm_prelabel=True)

    new_pairs = set(
        CandidatePair.objects.filter(source_round_id=round_.pk).values_list("id", flat=True)
    )
    assert new_pairs and not new_pairs & imported
    run = LabelRun.objects.get()
    assert round_.label_run_id == run.pk and run.source_round_id == round_.pk
    assert (run.task, run.status) == ("judge", "done")
    assert run.total == run.done == len(new_pairs)
    assert f"judging run {run.pk} over {len(new_pairs)} new pairs" in round_.note
    judged = set(Judgement.objects.filter(kind="llm").values_list("pair_id", flat=True))
    assert judged == new_pairs  # the imported pairs were left alone
    assert len(gemini_on.requests) == 2 * len(new_pairs)  # each pair in both orders

    # Running the step again (a resumed round) starts no second run.
    services._prelabel(round_)
    assert LabelRun.objects.count() == 1


def test_without_a_configured_judge_the_round_notes_it_and_finishes(
    loop_data, gemini_off, eager, monkeypatch
):
    round_ = run_round(loop_data, monkeypatch, llm_prelabel=True)
    assert round_.status == RoundStatus.DONE and round_.error == ""
    assert round_.candidates_created > 0
    assert round_.note.startswith("LLM pre-labelling skipped: The LLM judge is not configured")
    assert round_.label_run_id is None and not LabelRun.objects.exists()
    assert not Judgement.objects.filter(kind="llm").exists()


def test_a_rounds_pairs_come_up_in_a_raters_queue(loop_data, member, monkeypatch):
    from preferences.rating.queue import assignment_next, assignment_skip

    round_ = run_round(loop_data, monkeypatch)  # llm_prelabel is off by default
    assert round_.options["llm_prelabel"] is False and round_.note == ""
    new_pairs = set(
        CandidatePair.objects.filter(source_round_id=round_.pk).values_list("id", flat=True)
    )
    assert new_pairs
    rater = member("queue-rater")
    served = []
    for _ in range(len(new_pairs)):
        assignment = assignment_next(project=loop_data["project"], user=rater)
        assert assignment is not None
        served.append(assignment.pair_id)
        assignment_skip(assignment_id=assignment.pk, user=rater)
    # Model pairs have no known answer, so the queue serves them before the imported ones.
    assert set(served) == new_pairs
