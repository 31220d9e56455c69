"""One way to keep consensus fresh: writers mark pairs, one refresh rebuilds them (the task after
a commit, exports before they read); pages and selectors only read; adjudication is one
transaction."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.celery import app
from preferences.consensus.models import Consensus
from preferences.consensus.selectors import consensus_list, consensus_pending
from preferences.consensus.services import adjudication_record, consensus_refresh
from preferences.marks import consensus_refresh_request, pairs_mark_changed, refresh_key
from preferences.models import ConsensusPending, Judgement

pytestmark = pytest.mark.django_db


def _answer(pair, facet, user, choice):
    """A judgement stored and marked as a writer does, without running its on-commit hooks
    (the refresh task has not run yet)."""
    Judgement.objects.create(pair=pair, facet=facet, kind="human", rater_user=user, choice=choice)
    pairs_mark_changed(project_id=facet.project_id, pair_ids=[pair.pk])


def test_a_write_marks_its_pair_and_the_task_after_commit_refreshes_it(
    pair, overall, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        _answer(pair, overall, member("ann"), "A")
    assert ConsensusPending.objects.filter(pair=pair).exists()
    assert not Consensus.objects.filter(pair=pair).exists()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the task runs here, not on a worker (PostgreSQL runs)
    try:
        for hook in hooks:
            hook()  # the commit: the refresh is queued and rebuilds the pair
    finally:
        app.conf.task_always_eager = eager
    assert Consensus.objects.get(pair=pair, facet=overall).label == "A"
    assert not ConsensusPending.objects.exists()
    assert cache.get(refresh_key(overall.project_id)) is None  # the task cleared its key


def test_one_refresh_is_queued_per_project_until_it_starts(project):
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # the real broker (in-memory or Redis): count what is sent
    try:
        with app.connection_for_write() as conn:
            queue = conn.SimpleQueue("celery")
            queue.clear()
            consensus_refresh_request(project_id=project.pk)
            consensus_refresh_request(project_id=project.pk)  # one is waiting: nothing sent
            assert queue.qsize() == 1
            cache.delete(refresh_key(project.pk))  # what the task does first when it starts
            consensus_refresh_request(project_id=project.pk)
            assert queue.qsize() == 2
            queue.clear()
            queue.close()
    finally:
        app.conf.task_always_eager = eager
        cache.delete(refresh_key(project.pk))


def test_pages_and_selectors_read_without_writing(client, project, pair, overall, member):
    admin = member("boss", "admin")
    _answer(pair, overall, member("ann"), "B")
    client.force_login(admin)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("consensus:dashboard", args=[project.pk]))
        list(consensus_list(project=project))
    assert page.status_code == 200
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]
    assert writes == []
    assert not Consensus.objects.exists()  # not refreshed by reading
    assert consensus_pending(project=project)["pairs"] == 1
    assert "1 pair with new answers not yet in these labels" in page.content.decode()


def test_an_export_refreshes_before_it_reads(project, pair, overall, member, tmp_path, settings):
    from pathlib import Path

    from snapshots.services import snapshot_export, snapshot_filters_build

    image = Path(settings.MEDIA_ROOT) / pair.post.image.file.name
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"not read: the export only checks the file is there")

    for name in ("ann", "bob"):
        _answer(pair, overall, member(name), "B")
    manifest = snapshot_export(
        kind="palt",
        filters=snapshot_filters_build(kind="palt", project=project),
        formats=["jsonl"],
        out_dir=tmp_path / "out",
    )
    assert Consensus.objects.get(pair=pair, facet=overall).label == "B"
    assert not ConsensusPending.objects.exists()
    assert manifest["counts"]["records"] >= 1


def test_a_refresh_without_marks_does_nothing(project, pair, overall, member):
    Judgement.objects.create(
        pair=pair, facet=overall, kind="human", rater_user=member("a"), choice="A"
    )
    assert consensus_refresh(project_id=project.pk) == 0
    assert consensus_refresh(project_id=None) == 0


def test_an_adjudication_is_all_facets_or_none(project, pair, member):
    from core.errors import ApplicationError

    reviewer = member("rev", "reviewer")
    overall, faithful = project.facets.get(key="overall"), project.facets.get(key="faithful")
    adjudication_record(pair=pair, user=reviewer, answers={faithful: "A"})
    with pytest.raises(ApplicationError):
        # faithful was ruled A already: changing it is refused, and overall goes with it
        adjudication_record(pair=pair, user=reviewer, answers={overall: "B", faithful: "B"})
    assert not Judgement.objects.filter(facet=overall).exists()
    assert Judgement.objects.get(facet=faithful).choice == "A"


def test_a_policy_change_rebuilds_every_pair_through_the_refresh(
    client, project, pair, overall, member, llm, judge
):
    judge(pair, overall, member("ann"), "A")
    judge(pair, overall, llm, "B")
    assert Consensus.objects.get(pair=pair, facet=overall).label == "A"  # human 1.0 > LLM 0.5
    client.force_login(member("boss", "admin"))
    form = {
        "method": "weighted",
        "weight_adjudication": "5",
        "weight_human": "1",
        "weight_llm": "3",
        "review_threshold": "0.6",
        "gold_rate": "0.05",
        "gold_min_answers": "5",
    }
    client.post(reverse("consensus:policy", args=[project.pk]), form)
    assert Consensus.objects.get(pair=pair, facet=overall).label == "B"
    assert not ConsensusPending.objects.exists()
