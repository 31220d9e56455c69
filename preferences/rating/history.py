"""A rater's position in the queue and their recent items: what is left, today's count against
their goal, the newest submissions (reopenable), and editing a submitted answer.

These reads sit off the rating hot path: the judge screen loads them as a separate fragment
after the item is shown (and a page of their own serves them without JavaScript).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from annotate.models import Project
from core.errors import ApplicationError, NotFound

from ..marks import pairs_mark_changed
from ..models import (
    CHOICE_VALUES,
    Assignment,
    AssignmentStatus,
    Facet,
    Judgement,
    JudgementEdit,
    JudgementKind,
)
from ..services import MAX_RATIONALE_CHARS
from . import rules

HISTORY_ITEMS = 10
# "Remaining" counts the open pairs of the project for this rater; cached briefly because it
# scans the project's open pairs (never on the Next/Submit path).
REMAINING_CACHE_SECONDS = 15


def edit_deadline(assignment: Assignment) -> datetime | None:
    """Until when a submitted item can be reopened and edited: while its reservation lasts, or
    EDIT_WINDOW after its submission, whichever is later."""
    if assignment.status != AssignmentStatus.DONE or assignment.submitted_at is None:
        return None
    window = timedelta(seconds=settings.ALTPREF.get("EDIT_WINDOW_SECONDS", 15 * 60))
    return max(assignment.reserved_until, assignment.submitted_at + window)


def edit_open(assignment: Assignment, now: datetime | None = None) -> bool:
    deadline = edit_deadline(assignment)
    return deadline is not None and deadline > (now or timezone.now())


def rater_remaining(*, project: Project, user) -> int:
    """Pairs of the project this rater could still be served (rules.REMAINING): not full
    (fewer than `overlap` submitted), not gold-only, and not already submitted, skipped or
    judged by the rater."""
    key = f"altpref:remaining:{project.pk}:{user.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    params = {"project": project.pk, "user": user.pk, "overlap": project.overlap, "floor": 0}
    with connection.cursor() as cursor:
        cursor.execute(rules.python(rules.REMAINING), params)
        remaining = cursor.fetchone()[0]
    cache.set(key, remaining, REMAINING_CACHE_SECONDS)
    return remaining


def rater_done_today(*, project: Project, user) -> int:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Assignment.objects.filter(
        project=project, rater=user, status=AssignmentStatus.DONE, submitted_at__gte=start
    ).count()


@dataclass
class HistoryItem:
    assignment: Assignment
    answers: list[tuple[str, str]]  # (facet label, choice as the rater saw it)
    editable_until: datetime | None
    edited: bool

    @property
    def left_text(self) -> str:
        """Alt-text A as the rater saw it."""
        pair = self.assignment.pair
        return (pair.alt_a if self.assignment.shown_order == "AB" else pair.alt_b).text

    @property
    def summary(self) -> str:
        choices = {c for _, c in self.answers}
        if len(choices) == 1 and len(self.answers) > 1:
            return f"{next(iter(choices))} on all {len(self.answers)} facets"
        return ", ".join(f"{label}: {c}" for label, c in self.answers) or "no answers"


def rater_history(*, project: Project, user, limit: int = HISTORY_ITEMS) -> list[HistoryItem]:
    """The rater's newest submitted items in the project, newest first, with their answers in
    the order the rater saw the sides."""
    from .queue import displayed_to_stored  # the mapping is its own inverse

    items = list(
        Assignment.objects.filter(project=project, rater=user, status=AssignmentStatus.DONE)
        .select_related("pair__alt_a", "pair__alt_b")
        .order_by("-submitted_at", "-id")[:limit]
    )
    pair_ids = [a.pair_id for a in items]
    answers: dict[int, list[tuple[str, str]]] = {}
    for pair_id, label, choice in (
        Judgement.objects.filter(pair_id__in=pair_ids, rater_user=user, kind=JudgementKind.HUMAN)
        .order_by("facet__position", "facet_id")
        .values_list("pair_id", "facet__label", "choice")
    ):
        answers.setdefault(pair_id, []).append((label, choice))
    edited = set(
        JudgementEdit.objects.filter(pair_id__in=pair_ids, rater=user).values_list(
            "pair_id", flat=True
        )
    )
    now = timezone.now()
    return [
        HistoryItem(
            assignment=a,
            answers=[
                (label, displayed_to_stored(choice=c, shown_order=a.shown_order))
                for label, c in answers.get(a.pair_id, [])
            ],
            editable_until=edit_deadline(a) if edit_open(a, now) else None,
            edited=a.pair_id in edited,
        )
        for a in items
    ]


def assignment_answers(*, assignment: Assignment) -> dict[str, str]:
    """The rater's stored answers for a submitted item, as the rater saw the sides
    (facet key -> choice), for showing a reopened item."""
    from .queue import displayed_to_stored

    return {
        key: displayed_to_stored(choice=choice, shown_order=assignment.shown_order)
        for key, choice in Judgement.objects.filter(
            pair_id=assignment.pair_id, rater_user=assignment.rater_id, kind=JudgementKind.HUMAN
        ).values_list("facet__key", "choice")
    }


def assignment_edit(
    *, assignment_id: int, user, answers: dict[str, str], rationale: str | None = None
) -> int:
    """Replace the rater's answers on a submitted item while it is editable (edit_deadline);
    return how many facets changed. Each change is kept in JudgementEdit (what it was, what it
    became, when); the pair's consensus is rebuilt. Required facets must stay answered."""
    from .queue import _locked_assignment, displayed_to_stored

    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, user=user)
        if assignment.member_role is None:
            raise NotFound("No such item in your queue.")
        if assignment.status != AssignmentStatus.DONE:
            raise ApplicationError("Only a submitted item can be edited.", status_code=409)
        now = timezone.now()
        if not edit_open(assignment, now):
            raise ApplicationError(
                "The time to edit that item has ended; its answers stay as submitted.",
                status_code=409,
            )
        facets = list(Facet.objects.filter(project_id=assignment.project_id, is_active=True))
        bad = [f.label for f in facets if answers.get(f.key, "") not in CHOICE_VALUES | {""}]
        missing = [f.label for f in facets if f.required and not answers.get(f.key)]
        if bad:
            raise ApplicationError("Unknown answer for: " + ", ".join(bad) + ".")
        if missing:
            raise ApplicationError(
                "Answer every required facet; missing: " + ", ".join(missing) + "."
            )
        if rationale is not None and len(rationale) > MAX_RATIONALE_CHARS:
            raise ApplicationError(f"The rationale is limited to {MAX_RATIONALE_CHARS} characters.")
        stored = {
            j.facet_id: j
            for j in Judgement.objects.select_for_update().filter(
                pair_id=assignment.pair_id, rater_user=user, kind=JudgementKind.HUMAN
            )
        }
        changed = 0
        for facet in facets:
            shown = answers.get(facet.key, "")
            new = (
                displayed_to_stored(choice=shown, shown_order=assignment.shown_order)
                if shown
                else ""
            )
            old = stored.get(facet.id)
            if (old.choice if old else "") == new:
                continue
            JudgementEdit.objects.create(
                pair_id=assignment.pair_id,
                facet=facet,
                rater=user,
                old_choice=old.choice if old else "",
                new_choice=new,
            )
            changed += 1
            if old is None:
                Judgement.objects.create(
                    pair_id=assignment.pair_id,
                    facet=facet,
                    kind=JudgementKind.HUMAN,
                    rater_user=user,
                    choice=new,
                    shown_order=assignment.shown_order,
                    rationale=(rationale or "").strip(),
                    client_key=f"{assignment.token.hex}:{facet.key}:edit"[:64],
                )
            elif not new:
                old.delete()
            else:
                old.choice = new
                old.save(update_fields=["choice"])
        if rationale is not None:
            Judgement.objects.filter(
                pair_id=assignment.pair_id, rater_user=user, kind=JudgementKind.HUMAN
            ).update(rationale=rationale.strip())
        if changed:
            pairs_mark_changed(project_id=assignment.project_id, pair_ids=[assignment.pair_id])
        return changed
