"""Long jobs (snapshot exports, LLM labelling runs, training rounds): one way to start, claim,
keep alive, and recover them.

The job's row is the truth; the broker only carries wake-ups.

- `enqueue` (the outbox): after the row is committed, send a message for it. When the broker is
  down the row simply stays waiting with no "sent" mark (heartbeat_at NULL), nothing is raised,
  and the page says it will start when the queue is back.
- `claim`: one conditional UPDATE takes a waiting row, or an active row whose worker stopped
  heart-beating (dead) or released it (heartbeat_at NULL: an LLM run between two batches, or a
  row the sweep handed over). A second message for a job a live worker holds is dropped.
- `Heartbeat`: a thread touches heartbeat_at while the job runs; a worker that finds its row
  taken over stops (`lost`).
- `sweep` (Celery beat, or the dev server's sweeper thread): re-sends waiting rows never sent or
  sent long ago, and active rows whose heartbeat is stale, so a dead worker's job is taken over
  within STALE_S + SWEEP_S instead of the broker's visibility timeout (48 h).

Waiting rows use heartbeat_at as "sent at"; active rows as the worker's heartbeat.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, PositiveSmallIntegerField, Q, Value, When
from django.utils import timezone

log = logging.getLogger(__name__)

QUEUE_DOWN_MESSAGE = "Queued: the job queue is unreachable; it will start when the queue is back."


def conf(key: str):
    return settings.ALTPREF_JOBS[key]


@dataclass(frozen=True)
class JobKind:
    """How one kind of job maps onto its model: statuses, task, and how stale is dead."""

    name: str
    model_path: str  # "app_label.Model"
    task_path: str  # "module:task_object"
    waiting: tuple[str, ...]
    active: tuple[str, ...]
    running: str  # the status a claim moves a waiting row to
    stale_s: object = None  # callable () -> seconds; default conf("STALE_S")
    only: dict = field(default_factory=dict)  # extra filter (rounds: not external)
    # Modules the task needs that are slow to import (torch): the dev server imports them on a
    # thread at start-up (job_runner.warm_imports), so the first job does not pay it in a request.
    preload: tuple[str, ...] = ()

    @property
    def model(self):
        from django.apps import apps

        return apps.get_model(self.model_path)

    @property
    def task(self):
        import importlib

        module, name = self.task_path.split(":")
        return getattr(importlib.import_module(module), name)

    def stale_seconds(self) -> float:
        return float(self.stale_s() if self.stale_s else conf("STALE_S"))

    def stale_before(self):
        return timezone.now() - timedelta(seconds=self.stale_seconds())

    def rows(self):
        return self.model._base_manager.filter(**self.only)


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    return kind


def kinds() -> list[JobKind]:
    # Each app registers its kind in its own `jobs` module; importing every installed app's
    # (as the admin discovers `admin` modules) keeps the sweep independent of which modules a
    # process happened to import, without core naming the apps built on it.
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("jobs")
    return list(_KINDS.values())


# --- the outbox ---------------------------------------------------------------------------------


def _broker_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions

    return (
        kombu.exceptions.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        OSError,
    )


def enqueue(kind: JobKind, pk: int) -> bool:
    """Send a message for the job; False (nothing raised) when the broker is unreachable.

    A waiting row gets heartbeat_at = now ("sent"); on failure it goes back to NULL so the sweep
    sends it again. An active row (released or taken over) keeps its heartbeat_at.
    """
    from celery import current_app, uuid

    task_id = uuid()
    rows = kind.rows().filter(pk=pk)
    now = timezone.now()
    sent_mark = rows.filter(status__in=kind.waiting).update(task_id=task_id, heartbeat_at=now)
    if not sent_mark and not rows.filter(status__in=kind.active).exists():
        return False  # finished or gone: nothing to start
    if current_app.conf.task_always_eager:
        if conf("RUNNER") == "thread":
            from .job_runner import runner

            runner().submit(kind, pk, task_id)
        else:
            kind.task.apply_async(args=[pk], task_id=task_id)  # inline (tests)
        return True
    try:
        # retry=False: publishing fails fast instead of retrying while the request waits.
        # ignore_result: the row is the result; with a Redis result backend, subscribing to the
        # result channel while Redis is down blocked ~15 s, then refused until a restart.
        kind.task.apply_async(args=[pk], task_id=task_id, retry=False, ignore_result=True)
    except _broker_errors() as exc:
        log.warning("%s %s: broker unreachable, left for the sweep (%s)", kind.name, pk, exc)
        rows.filter(task_id=task_id, status__in=kind.waiting).update(heartbeat_at=None)
        return False
    return True


def enqueue_on_commit(kind: JobKind, obj) -> None:
    """Enqueue after the surrounding transaction commits; sets obj.queue_down when not sent."""
    from django.db import transaction

    def send():
        obj.queue_down = not enqueue(kind, obj.pk)

    obj.queue_down = False
    transaction.on_commit(send)


def waiting_unsent(kind: JobKind, obj) -> bool:
    """True when the job waits for a queue that could not be reached (for pages and the API)."""
    return obj.status in kind.waiting and obj.heartbeat_at is None


# --- the worker side ---------------------------------------------------------------------------


class JobBusy(Exception):
    """A live worker holds the job; this message is a duplicate."""


def claim(kind: JobKind, pk: int, *, task_id: str, max_takeovers: int | None = None):
    """Take the job for this worker: the row, or None when there is nothing to do.

    Raises JobBusy when a live worker holds it. Claiming an active row (a takeover or the next
    batch of a released run) counts one attempt; past max_takeovers the job fails with a
    message that says why.
    """
    now = timezone.now()
    limit = conf("MAX_TAKEOVERS") if max_takeovers is None else max_takeovers
    free = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=kind.stale_before())
    claimable = Q(status__in=kind.waiting) | Q(status__in=kind.active) & free & Q(
        attempts__lt=limit
    )
    taken = (
        kind.rows()
        .filter(claimable, pk=pk)
        .update(
            status=Case(
                When(status__in=kind.waiting, then=Value(kind.running)), default=F("status")
            ),
            attempts=Case(
                When(status__in=kind.active, then=F("attempts") + 1),
                default=F("attempts"),
                output_field=PositiveSmallIntegerField(),
            ),
            heartbeat_at=now,
            task_id=task_id,
        )
    )
    row = kind.rows().filter(pk=pk).first()
    if taken or row is None or row.status not in kind.active:
        return row if taken else None
    if row.heartbeat_at is not None and row.heartbeat_at >= kind.stale_before():
        raise JobBusy(f"{kind.name} {pk} is held by a live worker")
    return None  # attempts exhausted: the caller fails the job


def release(kind: JobKind, pk: int, *, task_id: str) -> None:
    """Hand an active job to whichever message comes next (an LLM run between batches)."""
    kind.rows().filter(pk=pk, task_id=task_id, status__in=kind.active).update(
        heartbeat_at=None, attempts=0
    )


class Heartbeat:
    """Touches heartbeat_at from a thread while the job runs. `lost` is set when the row is no
    longer this worker's (taken over, cancelled, finished elsewhere)."""

    def __init__(self, kind: JobKind, pk: int, *, task_id: str | None, every: float | None = None):
        self.kind, self.pk, self.task_id = kind, pk, task_id
        self.every = float(every if every is not None else conf("HEARTBEAT_S"))
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"{kind.name}-{pk}-hb")

    def beat(self) -> bool:
        rows = self.kind.rows().filter(pk=self.pk, status__in=self.kind.active)
        if self.task_id is not None:
            rows = rows.filter(task_id=self.task_id)
        if rows.update(heartbeat_at=timezone.now()):
            return True
        self.lost.set()
        return False

    def _run(self):
        try:
            while not self.stop.wait(self.every):
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a database blip must not end the heartbeat
                    log.warning("%s %s: heartbeat failed; retrying", self.kind.name, self.pk)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


# --- the sweep ----------------------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Send every job that waits without a message or whose worker died; returns counts."""
    now = timezone.now()
    grace = now - timedelta(seconds=conf("SEND_GRACE_S"))
    resend = now - timedelta(seconds=conf("REQUEUE_WAITING_S"))
    counts = {}
    for kind in kinds():
        rows = kind.rows()
        unsent = Q(status__in=kind.waiting) & (
            Q(heartbeat_at__isnull=True, created_at__lt=grace) | Q(heartbeat_at__lt=resend)
        )
        dead = Q(status__in=kind.active) & (
            Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=kind.stale_before())
        )
        pks = list(rows.filter(unsent | dead).values_list("pk", flat=True)[:500])
        counts[kind.name] = sum(1 for pk in pks if enqueue(kind, pk))
    return counts
