"""The quality gate in the feedback phase: degenerate outputs never become pairs (so never reach
a rater's queue), each keeps the reason it was held back, and the round's page counts them."""

import pytest

from annotate.models import Post
from modeltrain import feedback, services
from modeltrain.models import RoundOutput, RoundStatus, TrainingRound
from preferences.models import CandidatePair
from preferences.rating.queue import assignment_next, assignment_skip

from .conftest import FAST_OPTIONS

pytestmark = pytest.mark.django_db

LOOP = "an off - white an off - white an off - white an off - white an off - white an off"


@pytest.fixture
def done_round(loop_data, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        options={**FAST_OPTIONS, "max_candidate_chars": 120},
    )
    TrainingRound.objects.filter(pk=round_.pk).update(status=RoundStatus.DONE)
    round_.refresh_from_db()
    return round_


def test_degenerate_outputs_are_held_back_with_their_reason(loop_data, done_round, member, client):
    project = loop_data["project"]
    posts = list(project.posts.filter(split="train").order_by("id")[:6])
    chosen = posts[4].alt_texts.get(origin="imported-chosen").text
    lonely = Post.objects.create(
        project=project, platform="twitter", content_key="lonely", context="No alt-text yet.",
        image=posts[0].image, split="train",
    )  # fmt: skip
    outputs = {
        "repetition": (posts[0], LOOP),
        "empty": (posts[1], "  ...  "),
        "too-long": (posts[2], "A red square, " + "then a detail, " * 10 + "and more."),
        "copies-post": (posts[3], posts[3].context),
        "duplicate": (posts[4], chosen.upper()),
        "no-opponent": (lonely, "A red square."),
        "": (posts[5], "A red square in the corner of a white picture."),
    }
    for reason, (post, text) in outputs.items():
        out = feedback.feedback_record(round_=done_round, post=post, text=text)
        assert out.held_back == reason, (reason, text)
        assert bool(out.pair_id) == (reason == "")
    # Recording again (a resumed round) keeps the first verdict and adds nothing.
    again = feedback.feedback_record(round_=done_round, post=posts[0], text="A fine text now.")
    assert again.held_back == "repetition" and again.text == LOOP
    pairs = CandidatePair.objects.filter(source_round_id=done_round.pk)
    assert pairs.count() == 1
    assert pairs.get().alt_a.text == outputs[""][1]

    # A rater's queue serves the one good candidate and none of the held-back texts.
    rater = member("gate-rater")
    served = []
    while (assignment := assignment_next(project=project, user=rater)) is not None:
        served.append(assignment.pair)
        assignment_skip(assignment_id=assignment.pk, user=rater)
        if len(served) > 40:
            break
    model_pairs = [p for p in served if p.source == "model"]
    assert [p.alt_a.text for p in model_pairs] == [outputs[""][1]]

    client.force_login(loop_data["user"])
    page = client.get(f"/rounds/{done_round.pk}/").content.decode()
    assert "Held back by the quality gate:" in page
    for label in ("1 repetition loop", "1 empty (no letters or digits)", "1 over-long",
                  "1 copy of the post text", "1 same as an alt-text the post already has",
                  "1 post has no alt-text to compare with"):  # fmt: skip
        assert label in page, label
    assert "an off - white an off - white" in page  # listed under "What was held back"
    assert RoundOutput.objects.filter(round=done_round).exclude(held_back="").count() == 6
