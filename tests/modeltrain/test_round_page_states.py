"""The round page in every state a round can be in, and the message after starting one: it says
what the round's state is when the admin lands on the page (a round the eager `make run` mode
has already finished is not announced as "queued")."""

import pytest

from modeltrain import services
from modeltrain.models import RoundStatus, TrainingRound

from .conftest import FAST_OPTIONS

POLL = 'hx-trigger="every 2s"'
HISTORY = [
    {"step": s, "loss": 0.69 - 0.05 * s, "margins": {"image": 0.1 * s, "context": -0.02 * s}}
    for s in range(1, 9)
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("reached", "message"),
    [
        (RoundStatus.QUEUED, "queued: it starts when a gpu worker is free"),
        (RoundStatus.RUNNING, "started (training); this page follows it"),
        (RoundStatus.DONE, "started and finished."),
        (RoundStatus.FAILED, "started and failed; the error is below."),
    ],
)
def test_the_message_after_starting_matches_the_state(
    loop_data, client, monkeypatch, reached, message
):
    # The enqueue hook stands in for the worker: it moves the round to `reached` before the
    # view reads it back (as the eager mode's in-line run does for "done").
    def enqueue(round_id):
        TrainingRound.objects.filter(pk=round_id).update(status=reached)

    monkeypatch.setattr(services, "_enqueue", enqueue)
    client.force_login(loop_data["user"])
    response = client.post(
        f"/rounds/projects/{loop_data['project'].pk}/start",
        {"snapshot": loop_data["snapshot"].pk, "method": "mcmdpo", "base_model": "tiny"},
        follow=True,
    )
    page = response.content.decode()
    round_ = TrainingRound.objects.get()
    assert f"Round {round_.pk} {message}" in page
    assert ("queued" in page.split('class="messages"')[1].split("</div>")[0]) == (
        reached == RoundStatus.QUEUED
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", [s for s, _ in RoundStatus.choices])
def test_the_page_is_right_for_a_round_in_any_state(loop_data, client, monkeypatch, status):
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        options=FAST_OPTIONS,
    )
    fields = {"status": status}
    if status != RoundStatus.QUEUED:
        fields.update(step=8, total_steps=8, history=HISTORY, loss=0.29)
    if status == RoundStatus.FAILED:
        fields["error"] = "Training exited with status 1: out of memory"
    TrainingRound.objects.filter(pk=round_.pk).update(**fields)
    client.force_login(loop_data["user"])
    page = client.get(f"/rounds/{round_.pk}/").content.decode()
    label = RoundStatus(status).label
    assert f"<strong>{label}</strong>" in page
    finished = status in (RoundStatus.DONE, RoundStatus.FAILED, RoundStatus.CANCELLED)
    assert (POLL in page) == (not finished)  # polls until finished, then stops
    assert ("Cancel round" in page) == (not finished)
    assert ("out of memory" in page) == (status == RoundStatus.FAILED)
    assert ('id="round-human"' in page) == (status == RoundStatus.DONE)
    assert " style=" not in page and "<script>" not in page  # CSP: no inline styles or scripts
    if status == RoundStatus.QUEUED:
        assert 'id="round-curve"' not in page
        return
    # The chart: labelled axes with ticks, a legend, and every marker's value in its title.
    assert 'id="round-curve"' in page
    assert ">Training step</text>" in page and ">Value (loss, margin)</text>" in page
    assert 'class="tick x-tick"' in page and 'class="tick y-tick"' in page
    assert page.count('class="curve-point"') == 3 * 8  # loss, margin image, margin context
    assert "<title>loss at step 8: 0.2900</title>" in page
    assert 'aria-label="margin image at step 4: 0.4000"' in page
    legend = page.split('class="legend"')[1].split("</ul>")[0]
    assert "loss" in legend and "margin image" in legend and "margin context" in legend
