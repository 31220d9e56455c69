"""The raters' queue: reserve the next pair, submit, skip and undo, overlap-safe under concurrency.

Overlap N = distinct raters per pair. A rater's assignment counts against N while it is submitted
or reserved and not expired; expired reservations free their slot (reclaimed) without a sweeper.
On PostgreSQL, Next locks the candidate pair row with SELECT … FOR UPDATE SKIP LOCKED and counts
the pair's active assignments again under that lock, so two raters pressing Next together can
never push a pair past N: the second one skips the locked row and takes another pair. SQLite
serialises writers, which is enough for the embedded default.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import Project
from annotate.selectors import project_role
from core.errors import ApplicationError, NotFound

from .consensus.selectors import gold_pair_for_rater, llm_verdicts_visible
from .models import (
    Assignment,
    AssignmentStatus,
    CandidatePair,
    Choice,
    Facet,
    Judgement,
    JudgementKind,
    PairSource,
    QueuePolicy,
    ShownOrder,
    SkipPolicy,
)
from .services import judgements_record_item

# How many locked-out or just-filled candidates Next tries before giving up for this request.
_NEXT_ATTEMPTS = 8


def _active(now) -> Q:
    return Q(status=AssignmentStatus.DONE) | Q(
        status=AssignmentStatus.RESERVED, reserved_until__gt=now
    )


def _active_count(pair_ref, now) -> Coalesce:
    counts = (
        Assignment.objects.filter(_active(now), pair=pair_ref)
        .order_by()
        .values("pair")
        .annotate(c=Count("id"))
        .values("c")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def assignment_current(*, project: Project, user) -> Assignment | None:
    """The rater's oldest live reservation in the project (what Next shows again)."""
    # A narrow query first: on the hot path the rater usually has none, and the joins for
    # rendering are only paid when there is one.
    current_id = (
        Assignment.objects.filter(
            project=project,
            rater=user,
            status=AssignmentStatus.RESERVED,
            reserved_until__gt=timezone.now(),
        )
        .order_by("reserved_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    return _with_related(current_id, project=project) if current_id else None


def _reserve(*, project: Project, user, pair_id: int, now) -> Assignment:
    values = {
        "project": project,
        "status": AssignmentStatus.RESERVED,
        "shown_order": random.choice([ShownOrder.AB, ShownOrder.BA]),
        "token": uuid.uuid4(),
        "reserved_at": now,
        "reserved_until": now + timedelta(seconds=project.reservation_seconds),
        "submitted_at": None,
    }
    # One upsert: the rater's own expired or skipped row for this pair is reused (one row per
    # pair and rater), otherwise a new row is inserted.
    [assignment] = Assignment.objects.bulk_create(
        [Assignment(pair_id=pair_id, rater=user, **values)],
        update_conflicts=True,
        unique_fields=["pair", "rater"],
        update_fields=list(values),
    )
    return assignment


def _with_related(assignment_id: int, *, project: Project) -> Assignment:
    """The assignment with everything the judge screen shows, in one query."""
    assignment = Assignment.objects.select_related(
        "pair__post__image", "pair__alt_a", "pair__alt_b"
    ).get(pk=assignment_id)
    assignment.project = project
    return assignment


def assignment_next(*, project: Project, user) -> Assignment | None:
    """Reserve the most useful open pair for `user` in `project`, or None when none is left.

    Most useful: pairs other raters have started (finishing them completes items), then pairs
    without a known answer, then the oldest. Never a pair this rater already has (submitted,
    skipped, or live), never one that has N active raters.
    """
    if project_role(project=project, user=user) is None:
        raise NotFound("No such project.")
    current = assignment_current(project=project, user=user)
    if current is not None:
        return current
    # Gold (known-answer) pairs come only through this draw, at the project's rate, and are
    # served like any other pair so raters cannot tell them apart.
    gold = gold_pair_for_rater(project=project, user=user)
    if gold is not None:
        with transaction.atomic():
            reserved = _reserve(project=project, user=user, pair_id=gold.pk, now=timezone.now())
        return _with_related(reserved.pk, project=project)
    overlap = project.overlap
    tried: list[int] = []
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        now = timezone.now()
        for _ in range(_NEXT_ATTEMPTS):
            own = Assignment.objects.filter(pair=OuterRef("pk"), rater=user).exclude(
                status=AssignmentStatus.RESERVED
            )
            judged = Judgement.objects.filter(
                pair=OuterRef("pk"), rater_user=user, kind=JudgementKind.HUMAN
            )
            mine = (
                CandidatePair.objects.filter(~Exists(own), ~Exists(judged))
                .exclude(source=PairSource.GOLD)
                .exclude(pk__in=tried)
            )
            order = (F("known_preference").asc(nulls_first=True), "id")
            # Phase 1, started pairs: a grouped scan of the project's live assignments is far
            # cheaper than counting assignments for every pair of the project.
            started = (
                Assignment.objects.filter(_active(now), project=project)
                .values("pair_id")
                .annotate(c=Count("id"))
                .filter(c__lt=overlap)
                .values("pair_id")
            )
            fresh = mine.filter(post__project=project).filter(
                ~Exists(Assignment.objects.filter(_active(now), pair=OuterRef("pk")))
            )
            # Fresh pairs in id order, unknown answers first: two index-ordered scans that stop
            # at the first free row, instead of sorting every open pair of the project.
            phases = [
                *([mine.filter(pk__in=started)] if overlap > 1 else []),
                fresh.filter(known_preference__isnull=True),
                fresh.filter(known_preference__isnull=False),
            ]
            pair_id = None
            if skip_locked:
                for phase in phases:
                    pair_id = (
                        phase.order_by("id")
                        .select_for_update(skip_locked=True, of=("self",), no_key=True)
                        .values_list("pk", flat=True)
                        .first()
                    )
                    if pair_id is not None:
                        break
            if pair_id is None:
                # Every open pair may just be locked by raters reserving right now (or this is
                # SQLite, which has no row locks): wait for one rather than report an empty queue.
                pair_id = (
                    mine.filter(post__project=project)
                    .annotate(active=_active_count(OuterRef("pk"), now))
                    .filter(active__lt=overlap)
                    .order_by("-active", *order)
                    .select_for_update(of=("self",), no_key=True)
                    .values_list("pk", flat=True)
                    .first()
                )
            if pair_id is None:
                break
            # Count again under the row lock: the first count came from the statement's snapshot.
            if (
                Assignment.objects.filter(_active(now), pair_id=pair_id).exclude(rater=user).count()
                < overlap
            ):
                reserved = _reserve(project=project, user=user, pair_id=pair_id, now=now)
                return _with_related(reserved.pk, project=project)
            tried.append(pair_id)
        skipped = _next_skipped(project=project, user=user, now=now)
        return _with_related(skipped.pk, project=project) if skipped else None


def _next_skipped(*, project: Project, user, now) -> Assignment | None:
    policy = QueuePolicy.objects.filter(project=project).values_list("skip_policy", flat=True)
    if (policy.first() or SkipPolicy.OTHERS) != SkipPolicy.LATER:
        return None
    skipped = (
        Assignment.objects.filter(project=project, rater=user, status=AssignmentStatus.SKIPPED)
        .annotate(active=_active_count(OuterRef("pair_id"), now))
        .filter(active__lt=project.overlap)
        .order_by("reserved_at")
    )
    if connection.features.has_select_for_update_skip_locked:
        skipped = skipped.select_for_update(skip_locked=True, of=("self",), no_key=True)
    first = skipped.first()
    if first is None:
        return None
    CandidatePair.objects.select_for_update(no_key=True).filter(pk=first.pair_id).first()
    if Assignment.objects.filter(_active(now), pair_id=first.pair_id).count() >= project.overlap:
        return None
    return _reserve(project=project, user=user, pair_id=first.pair_id, now=now)


def _locked_assignment(*, assignment_id: int, user) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",), no_key=True)
        .select_related("pair__post__project", "project")
        .filter(pk=assignment_id, rater=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such item in your queue.")
    return assignment


def llm_verdicts_for_rater(*, pair: CandidatePair, user) -> dict[str, list[str]]:
    """LLM choices per facet key (as stored) that this rater may see now; {} when blind."""
    if not llm_verdicts_visible(project=pair.post.project, user=user, pair=pair):
        return {}
    verdicts: dict[str, list[str]] = {}
    for key, choice in Judgement.objects.filter(pair=pair, kind=JudgementKind.LLM).values_list(
        "facet__key", "choice"
    ):
        verdicts.setdefault(key, []).append(choice)
    return verdicts


def displayed_to_stored(*, choice: str, shown_order: str) -> str:
    """Map a choice about the sides as shown (A = left) to the pair as stored."""
    if shown_order == ShownOrder.BA and choice in (Choice.A, Choice.B):
        return Choice.B if choice == Choice.A else Choice.A
    return choice


def assignment_submit(
    *, assignment_id: int, user, answers: dict[str, str], rationale: str = ""
) -> tuple[Assignment, bool]:
    """Record the rater's answers (facet key -> choice as displayed); return (assignment, created).

    A resubmitted form (double click, network retry) finds the assignment already done and
    stores nothing more. Every active facet must be answered.
    """
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, user=user)
        if assignment.status == AssignmentStatus.DONE:
            return assignment, False
        if assignment.status == AssignmentStatus.SKIPPED:
            raise ApplicationError("You skipped this item; it is no longer yours.", status_code=409)
        now = timezone.now()
        project = assignment.project
        if assignment.reserved_until <= now:
            CandidatePair.objects.select_for_update(no_key=True).filter(
                pk=assignment.pair_id
            ).first()
            taken = (
                Assignment.objects.filter(_active(now), pair_id=assignment.pair_id)
                .exclude(pk=assignment.pk)
                .count()
            )
            if taken >= project.overlap:
                raise ApplicationError(
                    "Your reservation for this item ran out and other raters took it; "
                    "your answers were not stored. Press Next for a new item.",
                    status_code=409,
                )
        facets = list(Facet.objects.filter(project=project, is_active=True))
        missing = [f.label for f in facets if answers.get(f.key) not in Choice.values]
        if missing:
            raise ApplicationError("Answer every facet; missing: " + ", ".join(missing) + ".")
        seconds = min(max((now - assignment.reserved_at).total_seconds(), 0.0), 86_399.0)
        # Asked before the answers are stored: with blind-first on this is what the rater saw.
        llm_seen = bool(llm_verdicts_for_rater(pair=assignment.pair, user=user))
        judgements_record_item(
            pair=assignment.pair,
            user=user,
            choices={
                facet: displayed_to_stored(
                    choice=answers[facet.key], shown_order=assignment.shown_order
                )
                for facet in facets
            },
            shown_order=assignment.shown_order,
            seconds_spent=seconds,
            rationale=rationale.strip(),
            client_key_prefix=assignment.token.hex,
            llm_verdict_visible=llm_seen,
        )
        assignment.status = AssignmentStatus.DONE
        assignment.submitted_at = now
        assignment.save(update_fields=["status", "submitted_at"])
        return assignment, True


def assignment_skip(*, assignment_id: int, user) -> Assignment:
    """Give a reserved item back: its slot is free for others (and, per policy, for you later)."""
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, user=user)
        if assignment.status == AssignmentStatus.DONE:
            raise ApplicationError(
                "This item is already submitted; undo it first.", status_code=409
            )
        if assignment.status != AssignmentStatus.SKIPPED:
            assignment.status = AssignmentStatus.SKIPPED
            assignment.save(update_fields=["status"])
        return assignment


def assignment_last_undoable(*, project: Project, user) -> Assignment | None:
    return (
        Assignment.objects.filter(
            project=project,
            rater=user,
            status=AssignmentStatus.DONE,
            reserved_until__gt=timezone.now(),
        )
        .order_by("-submitted_at", "-id")
        .first()
    )


def assignment_undo(*, assignment_id: int, user) -> Assignment:
    """Take back a submission while its reservation lasts: its judgements go, the item is yours again."""
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, user=user)
        if assignment.status != AssignmentStatus.DONE:
            raise ApplicationError("Only a submitted item can be undone.", status_code=409)
        if assignment.reserved_until <= timezone.now():
            raise ApplicationError(
                "The reservation for that item has ended, so it can no longer be undone.",
                status_code=409,
            )
        Judgement.objects.filter(
            pair_id=assignment.pair_id, rater_user=user, kind=JudgementKind.HUMAN
        ).delete()
        assignment.status = AssignmentStatus.RESERVED
        assignment.submitted_at = None
        assignment.save(update_fields=["status", "submitted_at"])
        return assignment
