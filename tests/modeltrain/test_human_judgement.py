"""Human judgement of rounds from raters' real answers: rounds' (and the base model's) feedback
candidates are recorded by modeltrain.feedback, served by the raters' queue and answered through
preferences.rating.queue.assignment_submit; the win rates, their Wilson intervals and the Bradley–Terry
order are then known answers — including a round that loses to the base model."""

import pytest
from django.utils.html import escape

from modeltrain import feedback, services
from modeltrain.human_eval import EXISTING, human_judgement_for_project
from modeltrain.models import RoundStatus, TrainingRound
from modeltrain.ranking import wilson
from preferences.models import CandidatePair, Judgement
from preferences.rating.queue import assignment_next, assignment_skip, assignment_submit

from .conftest import FAST_OPTIONS

pytestmark = pytest.mark.django_db

FACETS = ["overall", "faithful", "context", "concise", "fluent"]
ROUND_1 = ["A red {} near the top.", "A red {} in the middle.", "A big red {}.", "One red {}."]
BASE = ["Some {} shape.", "A {} thing here.", "An image with a {}.", "Shape {} drawn."]
ROUND_2 = ["Maybe {} or so.", "Possibly a {} again.", "Looks like {} maybe.", "Unclear {}."]
# Stored choices (A = the model's text, B = the post's best alt-text) for the overall facet,
# per rater, per post; "fluent" is a tie everywhere and the other facets follow "overall".
PLAN = {
    "r1": {"rater1": ["A", "A", "A", "tie"], "rater2": ["A", "A", "B", "A"]},  # 6.5 of 8
    "base": {"rater1": ["B", "B", "A", "B"], "rater2": ["tie", "B", "B", "both-bad"]},  # 2 of 8
    "r2": {"rater1": ["B", "B", "B", "B"], "rater2": ["B", "B", "tie", "B"]},  # 0.5 of 8
}


def _done_round(loop_data, monkeypatch, **options):
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        options={**FAST_OPTIONS, **options},
    )
    TrainingRound.objects.filter(pk=round_.pk).update(status=RoundStatus.DONE)
    round_.refresh_from_db()
    return round_


def _judge_all(project, rater, answers_for_pair):
    """The rater works through the queue; imported pairs are skipped, model pairs answered."""
    answered = 0
    wanted = len(answers_for_pair)
    for _ in range(100):
        if answered == wanted:
            return
        assignment = assignment_next(project=project, user=rater)
        assert assignment is not None, "the queue ran dry before every model pair was served"
        stored = answers_for_pair.get(assignment.pair_id)
        if stored is None:
            assignment_skip(assignment_id=assignment.pk, user=rater)
            continue
        shown = {"A": "B", "B": "A"} if assignment.shown_order == "BA" else {}
        answers = {
            facet: shown.get(choice, choice)
            for facet, choice in {
                **dict.fromkeys(FACETS, stored),
                "fluent": "tie",
            }.items()
        }
        _, created = assignment_submit(assignment_id=assignment.pk, user=rater, answers=answers)
        assert created
        answered += 1
    raise AssertionError("too many items")


def test_win_rates_and_ranking_from_real_judgements(loop_data, member, monkeypatch):
    project = loop_data["project"]
    project.overlap = 2
    project.save()
    round_1 = _done_round(loop_data, monkeypatch)
    round_2 = _done_round(loop_data, monkeypatch, feedback_base=False)
    posts = list(project.posts.filter(split="train").order_by("id")[:4])
    pair_of = {}  # (writer, post index) -> pair id
    for i, post in enumerate(posts):
        shape = f"shape{i}"
        writers = [("r1", round_1, "trained", ROUND_1), ("base", round_1, "base", BASE)]
        writers.append(("r2", round_2, "trained", ROUND_2))
        for writer, round_, model, texts in writers:
            out = feedback.feedback_record(
                round_=round_, post=post, text=texts[i].format(shape), model=model
            )
            assert out.pair_id and not out.held_back
            pair_of[(writer, i)] = out.pair_id
    assert CandidatePair.objects.filter(source="model").count() == 12

    for rater_name in ("rater1", "rater2"):
        plan = {
            pair_of[(writer, i)]: PLAN[writer][rater_name][i] for writer in PLAN for i in range(4)
        }
        _judge_all(project, member(rater_name), plan)
    assert Judgement.objects.filter(kind="human").count() == 12 * 2 * len(FACETS)

    human = human_judgement_for_project(project_id=project.pk)
    r1, r2, base = ("round", round_1.pk), ("round", round_2.pk), ("base", "tiny")
    expected = {r1: 6.5, base: 2.0, r2: 0.5}
    for player, wins in expected.items():
        for facet in FACETS:
            rate = human.rate(player, facet)
            want = 4.0 if facet == "fluent" else wins  # every fluent answer was a tie
            assert (rate.wins, rate.n) == (want, 8), (player, facet)
            assert rate.rate == want / 8
            assert (rate.low, rate.high) == pytest.approx(wilson(want, 8))
    overall = human.rate(r1, "overall")
    # By hand: centre (p + z²/2n)/(1 + z²/n) = 0.7111, half-width 0.2443.
    assert (round(overall.low, 4), round(overall.high, 4)) == (0.4668, 0.9555)
    # The existing alt-texts played all 24 games on the other side.
    assert human.rate(EXISTING, "overall").wins == 24 - (6.5 + 2.0 + 0.5)

    order = [row["player"] for row in human.ranking_rows("overall")]
    assert order == [r1, EXISTING, base, r2]  # round 2 loses to the base model
    rows = {row["player"]: row for row in human.ranking_rows("overall")}
    assert rows[r1]["games"] == rows[r2]["games"] == rows[base]["games"] == 8
    assert rows[EXISTING]["games"] == 24
    fluent = human.ranking_rows("fluent")
    assert all(row["strength"] == pytest.approx(0.0, abs=1e-6) for row in fluent)


def test_the_pages_show_win_rates_ranking_and_side_by_side(loop_data, client, monkeypatch):
    project = loop_data["project"]
    round_ = _done_round(loop_data, monkeypatch)
    post = project.posts.filter(split="train").order_by("id").first()
    mine = feedback.feedback_record(round_=round_, post=post, text="A red square up top.")
    feedback.feedback_record(round_=round_, post=post, text="A shape.", model="base")
    rater = loop_data["user"]
    assignment = assignment_next(project=project, user=rater)
    while assignment.pair_id != mine.pair_id:
        assignment_skip(assignment_id=assignment.pk, user=rater)
        assignment = assignment_next(project=project, user=rater)
    shown = "A" if assignment.shown_order == "AB" else "B"  # the model's side, as displayed
    assignment_submit(assignment_id=assignment.pk, user=rater, answers=dict.fromkeys(FACETS, shown))
    client.force_login(rater)
    detail = client.get(f"/rounds/{round_.pk}/").content.decode()
    assert 'id="round-human"' in detail and "1.00" in detail and "n=1" in detail
    assert "not judged yet" in detail  # the base model's pair has no answer yet
    listing = client.get(f"/rounds/projects/{project.pk}/").content.decode()
    ranking = listing[listing.index('id="rounds-ranking"') :]
    assert ranking.index(f"Round {round_.pk}</a></td>") < ranking.index("Existing alt-text")
    assert "Base model tiny" not in ranking  # its pair was not judged: not ranked yet
    api = client.get(f"/api/rounds/{round_.pk}/").json()
    low, high = wilson(1, 1)
    assert api["human_win_rates"]["overall"] == {
        "wins": 1.0, "n": 1, "rate": 1.0, "low": low, "high": high,
    }  # fmt: skip
    assert api["held_back"] == {}
    side = client.get(f"/rounds/projects/{project.pk}/compare?a={round_.pk}&b={round_.pk}:base")
    page = side.content.decode()
    assert side.status_code == 200 and "A red square up top." in page and "A shape." in page
    best = post.alt_texts.get(origin="imported-chosen").text
    assert escape(best) in page  # what both were judged against
    bad = client.get(f"/rounds/projects/{project.pk}/compare?a=999&b={round_.pk}")
    assert bad.status_code == 400 and "Choose two rounds" in bad.content.decode()
