"""Marks: every write of judgements notes which pairs changed, and a refresh is queued for them.

This is the one way consensus is kept fresh. Writers (the rating screen, review, the API, the
LLM labelers) call `pairs_mark_changed` inside their transaction; the mark commits with the
answers, so no change is lost. After the commit one `consensus.refresh` task per project is
queued (by name: this module sits below preferences.consensus and does not import it); the task
runs `consensus_refresh`, which rebuilds the marked pairs. Exports and training rounds run the
same refresh before they read; pages and selectors only read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .models import ConsensusPending

logger = logging.getLogger(__name__)

REFRESH_TASK = "consensus.refresh"
# The task waits this long before it starts, gathering the marks that follow (a busy project
# gets one refresh per interval, not one per Submit).
REFRESH_COUNTDOWN_S = 2.0
# The "a refresh is queued" key is deleted when the task starts; its timeout only bounds a lost
# message, after which the next mark queues a new task.
REFRESH_KEY_TIMEOUT_S = 30


def pairs_mark_changed(*, project_id: int, pair_ids: Iterable[int]) -> None:
    """Note, inside the caller's transaction, that these pairs' judgements changed, and queue
    a refresh of the project after the commit."""
    now = timezone.now()
    ConsensusPending.objects.bulk_create(
        [ConsensusPending(pair_id=pk, project_id=project_id, marked_at=now) for pk in pair_ids],
        ignore_conflicts=True,  # already marked: the pending refresh covers this change too
    )
    transaction.on_commit(lambda: consensus_refresh_request(project_id=project_id))


def consensus_refresh_request(*, project_id: int) -> None:
    """Queue the project's refresh task unless one is already waiting (call after commit).

    A waiting task has not yet read the marks (it clears the key before it does), so any mark
    committed before this call is covered by it. With eager Celery (tests, `make run`) the
    refresh runs now. A broker outage is logged, not raised: the marks stay and the next
    write, export or round refreshes them.
    """
    from celery import current_app

    key = refresh_key(project_id)
    if not cache.add(key, 1, timeout=REFRESH_KEY_TIMEOUT_S):
        return
    try:
        current_app.tasks[REFRESH_TASK].apply_async(
            (project_id,), countdown=REFRESH_COUNTDOWN_S, retry=False
        )
    except Exception as exc:  # noqa: BLE001 - broker down (issue 19)
        logger.warning("consensus refresh for project %s not queued: %s", project_id, exc)
        cache.delete(key)


def refresh_key(project_id: int) -> str:
    return f"altpref:consensus-refresh:{project_id}"
