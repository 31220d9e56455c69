"""A round in the demo project (what `make run` gives a newcomer) writes sensible alt-text, and no
degenerate candidate reaches the raters' queue.

"Sensible" is checked against the alt-text task's own grammar: the text names the part of the
picture the post is about (the left or right group, or the sign) with a count, a colour and a
shape. The demo model guesses some colours and shapes wrong; that is a quality the scores and the
raters measure, not a degenerate output."""

import re

import pytest
from django.core.management import call_command

from annotate.models import Project
from modeltrain import quality, services
from modeltrain.mcmdpo import alttext_task
from modeltrain.models import RoundOutput, RoundStatus
from preferences.models import CandidatePair
from tests.demo_model_cache import session_demo_cache

from .conftest import dump, export_palt_snapshot

COUNT = "|".join(alttext_task.COUNTS.values())
COLOUR = "|".join(alttext_task.COLOURS)
SHAPE = "|".join(alttext_task.SHAPES)
GROUP = rf"(?:{COUNT}) (?:{COLOUR}) (?:{SHAPE})s?"
SENSIBLE = re.compile(
    rf"^(?:{GROUP} on the (?P<side>left|right) next to {GROUP}"
    rf"|a sign that says \w+ above {GROUP} and {GROUP})$"
)


def _about(context: str) -> str:
    """Which part the post asks about, as the task's post templates say it."""
    if re.search(r"\bsign\b", context, re.I):
        return "sign"
    return "left" if re.search(r"\bleft\b", context) else "right"


@pytest.mark.django_db(transaction=True)
def test_a_demo_round_writes_sensible_alt_text_and_gates_the_rest(
    tmp_path_factory, tmp_path, monkeypatch, settings, capsys
):
    monkeypatch.setenv("ALTPREF_DEMO_MODEL_DIR", str(session_demo_cache(tmp_path_factory)))
    settings.ALTPREF_ROUNDS = {**settings.ALTPREF_ROUNDS, "DIR": str(tmp_path / "rounds")}
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)  # the test runs it
    call_command("seed_demo")
    capsys.readouterr()
    project = Project.objects.get()
    admin = project.members.get(username="admin")
    snapshot = export_palt_snapshot(project)

    round_ = services.round_start(
        user=admin,
        snapshot_id=snapshot.pk,
        method="mcmdpo",
        base_model="tiny",  # the demo project's tiny base is the SFT-trained demo model
        hyperparameters={},  # what the rounds page starts with: the demo model's defaults
        options={"max_new_tokens": 24, "num_beams": 1, "eval_limit": 8, "feedback_limit": 8},
    )
    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE
    round_.refresh_from_db()
    assert round_.status == RoundStatus.DONE, dump(round_.error)

    trained = RoundOutput.objects.filter(round=round_, purpose="feedback", model="trained")
    texts = [(o.text, o.post.context) for o in trained.select_related("post")]
    assert len(texts) == 8
    sensible = [
        (t, c) for t, c in texts if (m := SENSIBLE.match(t)) and (m["side"] or "sign") == _about(c)
    ]
    # Most of what the trained model writes is well-formed alt-text about the right part.
    assert len(sensible) >= 6, dump(texts)
    # Its automatic scores (x100) are those of real alt-text, not the 0.000 of a junk round.
    assert round_.scores["ROUGE-L"] > 30 and round_.base_scores["ROUGE-L"] > 30, dump(
        [round_.scores, round_.base_scores]
    )

    # Whatever reached the raters passed the quality gate; everything else says why not.
    outputs = RoundOutput.objects.filter(round=round_, purpose="feedback").select_related("post")
    assert all(bool(o.pair_id) != bool(o.held_back) for o in outputs)
    pairs = CandidatePair.objects.filter(source_round_id=round_.pk).select_related("alt_a", "post")
    assert pairs.exists()
    for pair in pairs:
        others = pair.post.alt_texts.exclude(origin="model").values_list("text", flat=True)
        verdict = quality.check(pair.alt_a.text, post_text=pair.post.context, existing=others)
        assert verdict.reason == "", (pair.alt_a.text, verdict.reason)
