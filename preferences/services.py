"""Writes for facets, pairs and judgements."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from annotate.models import ROLE_RANK, Project, Role
from annotate.selectors import project_role
from core.errors import ApplicationError, NotFound, PermissionDenied
from core.validation import text_check_storable

from .marks import pairs_mark_changed
from .models import (
    CHOICE_VALUES,
    DEFAULT_FACETS,
    SHOWN_ORDER_VALUES,
    CandidatePair,
    Choice,
    Facet,
    Judgement,
    JudgementKind,
    ShownOrder,
)

MAX_RATIONALE_CHARS = 5_000


def facets_create_defaults(*, project: Project) -> list[Facet]:
    """Give a project the default facet set (overall, faithful, context, concise, fluent)."""
    facets = [
        Facet(project=project, key=key, label=label, question=question, role=role, position=i)
        for i, (key, label, question, role) in enumerate(DEFAULT_FACETS)
    ]
    Facet.objects.bulk_create(facets, ignore_conflicts=True)
    return list(project.facets.all())


def _judgement_check(
    *,
    pair: CandidatePair,
    user,
    choices: dict[Facet, str],
    shown_order: str,
    seconds_spent: float | None,
    rationale: str,
    role: str | None = None,
) -> str:
    """The rules every human judgement write shares; returns the user's role in the project.

    `role` is the user's role when the caller has just read it (saves a query); None reads it.
    """
    project_id = pair.post.project_id
    if any(facet.project_id != project_id for facet in choices):
        raise ApplicationError("That facet does not belong to this pair's project.")
    if role is None:
        role = project_role(project=pair.post.project, user=user)
    if role is None:
        raise NotFound("No such pair.")
    for choice in choices.values():
        if choice not in CHOICE_VALUES:
            raise ApplicationError(
                f'Unknown choice "{choice}"; use one of {", ".join(Choice.values)}.'
            )
    if shown_order not in SHOWN_ORDER_VALUES:
        raise ApplicationError(f'Unknown shown order "{shown_order}".')
    if seconds_spent is not None and not (0 <= seconds_spent < 86_400):
        raise ApplicationError("seconds_spent must be between 0 and 86400.")
    if len(rationale) > MAX_RATIONALE_CHARS:
        raise ApplicationError(f"The rationale is limited to {MAX_RATIONALE_CHARS} characters.")
    text_check_storable(rationale, what="The rationale")
    return role


def judgement_record(
    *,
    pair: CandidatePair,
    facet: Facet,
    user,
    choice: str,
    shown_order: str = ShownOrder.AB,
    seconds_spent: float | None = None,
    rationale: str = "",
    kind: str = JudgementKind.HUMAN,
    client_key: str = "",
    llm_verdict_visible: bool = False,
) -> tuple[Judgement, bool]:
    """Record one human judgement (or a reviewer's adjudication); return (judgement, created).

    Idempotent: a resubmission of the same answer (double click, network retry, same
    client_key) returns the stored judgement with created=False. A *different* answer to an
    item the user already judged is refused: changing an answer is an explicit undo.
    `choice` refers to the pair as stored (A = alt_a), whatever order was shown.
    """
    if kind not in (JudgementKind.HUMAN, JudgementKind.ADJUDICATION):
        raise ApplicationError("LLM judgements are recorded by the labelers, not here.")
    role = _judgement_check(
        pair=pair,
        user=user,
        choices={facet: choice},
        shown_order=shown_order,
        seconds_spent=seconds_spent,
        rationale=rationale,
    )
    if kind == JudgementKind.ADJUDICATION and ROLE_RANK[Role(role)] < ROLE_RANK[Role.REVIEWER]:
        raise PermissionDenied("Only reviewers can adjudicate.")
    if len(client_key) > 64:
        raise ApplicationError("client_key is limited to 64 characters.")

    existing = Judgement.objects.filter(pair=pair, facet=facet, rater_user=user, kind=kind).first()
    if existing is None:
        try:
            with transaction.atomic():
                pairs_mark_changed(project_id=facet.project_id, pair_ids=[pair.pk])
                return (
                    Judgement.objects.create(
                        pair=pair,
                        facet=facet,
                        kind=kind,
                        rater_user=user,
                        choice=choice,
                        shown_order=shown_order,
                        seconds_spent=seconds_spent,
                        rationale=rationale,
                        client_key=client_key,
                        llm_verdict_visible=llm_verdict_visible,
                    ),
                    True,
                )
        except IntegrityError:
            # A concurrent identical submit won the race; fall through to compare with it.
            existing = Judgement.objects.get(pair=pair, facet=facet, rater_user=user, kind=kind)
    same_submit = (client_key and existing.client_key == client_key) or existing.choice == choice
    if same_submit:
        return existing, False
    raise ApplicationError(
        "You already answered this facet for this pair; undo it first to change the answer.",
        status_code=409,
    )


def judgements_plan_item(
    *,
    pair: CandidatePair,
    user,
    choices: dict[Facet, str],
    shown_order: str = ShownOrder.AB,
    seconds_spent: float | None = None,
    rationale: str = "",
    client_key_prefix: str = "",
    llm_verdict_visible: bool = False,
    role: str | None = None,
    existing: list[Judgement] | None = None,
) -> tuple[list[Judgement], list[Judgement]]:
    """The rules of one rater's answers for several facets of one pair; returns (already
    stored, new unsaved rows). Nothing is written: Submit stores the new rows (one SQL
    statement on PostgreSQL, the ORM elsewhere; preferences.rating.queue), marks the pair pending for
    the consensus refresh, and shares these rules with `judgement_record`.

    Role checked, choices validated; an answer equal to the stored one is a resubmission
    (nothing new), a different answer to an already answered facet is refused (409).
    `role` and `existing` (the user's human judgements on this pair) save queries when known.
    """
    _judgement_check(
        pair=pair,
        user=user,
        choices=choices,
        shown_order=shown_order,
        seconds_spent=seconds_spent,
        rationale=rationale,
        role=role,
    )
    if existing is None:
        existing = list(
            Judgement.objects.filter(
                pair=pair, rater_user=user, kind=JudgementKind.HUMAN, facet__in=list(choices)
            )
        )
    wanted = {facet.id for facet in choices}
    stored = {
        j.facet_id: j
        for j in existing
        if j.facet_id in wanted and j.kind == JudgementKind.HUMAN and j.rater_user_id == user.pk
    }
    for facet, choice in choices.items():
        if facet.id in stored and stored[facet.id].choice != choice:
            raise ApplicationError(
                f"You already answered {facet.label} for this pair; undo it first to change it.",
                status_code=409,
            )
    new = [
        Judgement(
            pair_id=pair.pk,
            facet_id=facet.pk,
            kind=JudgementKind.HUMAN,
            rater_user_id=user.pk,
            choice=choice,
            shown_order=shown_order,
            seconds_spent=seconds_spent,
            rationale=rationale,
            client_key=f"{client_key_prefix}:{facet.key}"[:64] if client_key_prefix else "",
            llm_verdict_visible=llm_verdict_visible,
        )
        for facet, choice in choices.items()
        if facet.id not in stored
    ]
    return list(stored.values()), new
