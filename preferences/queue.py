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
from django.db.models import Count, Exists, F, IntegerField, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import Membership, Project, Role
from annotate.selectors import project_role
from core.errors import ApplicationError, NotFound

from .consensus.selectors import consensus_policy_get, gold_pair_for_rater, llm_verdicts_visible
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


# The SQL form of _active() for an assignment aliased "a" (raw statements below).
_LIVE = "(a.status = 'done' OR (a.status = 'reserved' AND a.reserved_until > %(now)s))"


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


def _commit_without_flush_wait() -> None:
    """Let this transaction's COMMIT return before its WAL reaches disk (PostgreSQL).

    Only for reservations: a crash in the next fraction of a second can lose the reservation
    (the pair is simply free again and the rater presses Next) but never corrupts anything or
    lets a pair exceed its overlap. Judgements are never written this way.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


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
    _commit_without_flush_wait()
    # One upsert: the rater's own expired or skipped row for this pair is reused (one row per
    # pair and rater), otherwise a new row is inserted.
    [assignment] = Assignment.objects.bulk_create(
        [Assignment(pair_id=pair_id, rater=user, **values)],
        update_conflicts=True,
        unique_fields=["pair", "rater"],
        update_fields=list(values),
    )
    return assignment


_PAGE_RELATED = ("post__image", "alt_a", "alt_b")


_RESERVE_IF_OPEN_SQL = f"""
    INSERT INTO preferences_assignment
        (project_id, pair_id, rater_id, status, shown_order, token, reserved_at, reserved_until,
         submitted_at)
    SELECT %(project)s, %(pair)s, %(user)s, 'reserved', %(order)s, %(token)s, %(now)s,
           %(until)s, NULL
    WHERE (SELECT COUNT(*) FROM preferences_assignment a
           WHERE a.pair_id = %(pair)s AND a.rater_id <> %(user)s AND {_LIVE}) < %(overlap)s
    ON CONFLICT (pair_id, rater_id) DO UPDATE SET
        project_id = EXCLUDED.project_id, status = EXCLUDED.status,
        shown_order = EXCLUDED.shown_order, token = EXCLUDED.token,
        reserved_at = EXCLUDED.reserved_at, reserved_until = EXCLUDED.reserved_until,
        submitted_at = NULL
    RETURNING id"""


def _reserve_if_open(*, project: Project, user, pair_id: int, now, overlap: int) -> int | None:
    """`_reserve` and the overlap recount in one statement (PostgreSQL; the caller holds the
    pair's row lock): the reservation's id, or None when other raters filled the pair.

    Under READ COMMITTED the statement's count sees every reservation committed before it,
    which the pair lock orders before this one.
    """
    _commit_without_flush_wait()
    params = {
        "project": project.pk,
        "pair": pair_id,
        "user": user.pk,
        "order": random.choice([ShownOrder.AB, ShownOrder.BA]).value,
        "token": uuid.uuid4(),
        "now": now,
        "until": now + timedelta(seconds=project.reservation_seconds),
        "overlap": overlap,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_IF_OPEN_SQL, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _with_related(assignment_id: int, *, project: Project) -> Assignment:
    """The assignment with everything the judge screen shows, in one query."""
    assignment = Assignment.objects.select_related(
        *(f"pair__{name}" for name in _PAGE_RELATED)
    ).get(pk=assignment_id)
    assignment.project = project
    return assignment


def assignment_next(*, project: Project, user, role: str | None = None) -> Assignment | None:
    """Reserve the most useful open pair for `user` in `project`, or None when none is left.

    Most useful: pairs other raters have started (finishing them completes items), then pairs
    without a known answer, then the oldest. Never a pair this rater already has (submitted,
    skipped, or live), never one that has N active raters. `role` is the user's role when the
    caller has just read it (saves a query).

    The returned assignment carries `policy` (the project's ConsensusPolicy) and, for a pair
    reserved just now, `llm_visible` (whether LLM verdicts may be shown), so the judge page
    need not read them again.
    """
    if role is None:
        role = project_role(project=project, user=user)
    if role is None:
        raise NotFound("No such project.")
    current = assignment_current(project=project, user=user)
    if current is not None:
        return current
    policy = consensus_policy_get(project=project)
    # Gold (known-answer) pairs come only through this draw, at the project's rate, and are
    # served like any other pair so raters cannot tell them apart.
    gold = gold_pair_for_rater(project=project, user=user, policy=policy)
    if gold is not None:
        with transaction.atomic():
            reserved = _reserve(project=project, user=user, pair_id=gold.pk, now=timezone.now())
        return _fresh(_with_related(reserved.pk, project=project), policy=policy)
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
            pair_id = None
            if skip_locked:
                pair_id = _open_pair_locked(
                    project=project, user=user, now=now, overlap=overlap, tried=tried
                )
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
            if skip_locked:
                reserved_id = _reserve_if_open(
                    project=project, user=user, pair_id=pair_id, now=now, overlap=overlap
                )
            elif (
                Assignment.objects.filter(_active(now), pair_id=pair_id).exclude(rater=user).count()
                < overlap
            ):
                reserved_id = _reserve(project=project, user=user, pair_id=pair_id, now=now).pk
            else:
                reserved_id = None
            if reserved_id is not None:
                # The rater has never judged this pair (the query excludes judged pairs).
                reserved = _with_related(reserved_id, project=project)
                return _fresh(reserved, policy=policy, judged=False)
            tried.append(pair_id)
        skipped = _next_skipped(project=project, user=user, now=now)
        return (
            _fresh(_with_related(skipped.pk, project=project), policy=policy) if skipped else None
        )


# The hot statement of Next, one per phase, in SQL (the ORM built and compiled these nested
# queries anew on every request).
# Phase "started": pairs other raters have started (finishing them completes items), found by
# a grouped scan of the project's live assignments rather than a count for every pair.
# Phases "unknown" and "known": fresh pairs in id order, unknown answers first; index-ordered
# scans that stop at the first free row instead of sorting every open pair of the project.
# They start at the project's first pair: pairs carry no project column, so without that bound
# the scan walks every older project's pairs before reaching this one's (the same bound,
# repeated in the subqueries, lets their merge joins start there too).
# All: never a gold pair (those come from the gold draw), never one this rater has submitted,
# skipped or judged, never one tried already; rows other raters are locking are skipped.
_MINE = """
    p.source <> 'gold'
    AND NOT EXISTS (SELECT 1 FROM preferences_assignment o
                    WHERE o.pair_id = p.id AND o.pair_id >= %(first)s
                    AND o.rater_id = %(user)s AND o.status <> 'reserved')
    AND NOT EXISTS (SELECT 1 FROM preferences_judgement j
                    WHERE j.pair_id = p.id AND j.pair_id >= %(first)s
                    AND j.rater_user_id = %(user)s AND j.kind = 'human')
    AND NOT (p.id = ANY(%(tried)s))"""
_LOCK = " ORDER BY p.id LIMIT 1 FOR NO KEY UPDATE OF p SKIP LOCKED"
_PHASE_SQL = {
    "started": f"""SELECT p.id FROM preferences_candidatepair p
        WHERE p.id IN (SELECT a.pair_id FROM preferences_assignment a
                       WHERE a.project_id = %(project)s AND {_LIVE}
                       GROUP BY a.pair_id HAVING COUNT(*) < %(overlap)s)
        AND {_MINE}{_LOCK}""",
    **{
        phase: f"""SELECT p.id FROM preferences_candidatepair p
        JOIN annotate_post po ON po.id = p.post_id
        WHERE po.project_id = %(project)s AND p.id >= %(first)s AND p.known_preference IS {test}
        AND NOT EXISTS (SELECT 1 FROM preferences_assignment a
                        WHERE a.pair_id = p.id AND a.pair_id >= %(first)s AND {_LIVE})
        AND {_MINE}{_LOCK}"""
        for phase, test in (("unknown", "NULL"), ("known", "NOT NULL"))
    },
}

# (project id, created_at) -> the project's lowest pair id. Safe to keep for the life of the
# process: new pairs get higher ids, a deleted first pair only leaves the bound a little low,
# and a project re-created under a reused id (a reset sequence) has another created_at. A pair
# committed late with a lower id than one already seen (two imports into a new project at once)
# is still served, by the fallback query once the phases find nothing.
_FIRST_PAIR: dict[tuple, int] = {}


def _first_pair_id(project: Project) -> int | None:
    key = (project.pk, project.created_at)
    first = _FIRST_PAIR.get(key)
    if first is None:
        first = CandidatePair.objects.filter(post__project=project).aggregate(m=Min("id"))["m"]
        if first is not None:
            _FIRST_PAIR[key] = first
    return first


def _open_pair_locked(*, project: Project, user, now, overlap: int, tried: list[int]) -> int | None:
    """The most useful open pair for the rater, row-locked (PostgreSQL), or None."""
    first = _first_pair_id(project)
    if first is None:
        return None
    params = {
        "project": project.pk,
        "user": user.pk,
        "now": now,
        "overlap": overlap,
        "tried": tried,
        "first": first,
    }
    with connection.cursor() as cursor:
        for phase in ("started", "unknown", "known") if overlap > 1 else ("unknown", "known"):
            cursor.execute(_PHASE_SQL[phase], params)
            row = cursor.fetchone()
            if row is not None:
                return row[0]
    return None


def _fresh(assignment: Assignment, *, policy, judged: bool | None = None) -> Assignment:
    assignment.policy = policy
    # With blind-first, verdicts show only once the rater has judged the pair; unknown -> ask.
    assignment.llm_visible = (not policy.blind_first) or (None if judged is None else judged)
    return assignment


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


def _locked_assignment(*, assignment_id: int, user, lock_pair: bool = False) -> Assignment:
    """The rater's assignment, row-locked, with its pair, project and the rater's current role
    in the project (`member_role`; None when no longer a member) in one query; with
    `lock_pair` the pair's row is locked too."""
    role = (
        Value(Role.ADMIN)
        if user.is_staff
        else Subquery(
            Membership.objects.filter(project=OuterRef("project_id"), user=user).values("role")[:1]
        )
    )
    assignment = (
        Assignment.objects.select_for_update(
            of=("self", "pair") if lock_pair else ("self",), no_key=True
        )
        .select_related("pair__post__project", "project")
        .annotate(member_role=role)
        .filter(pk=assignment_id, rater=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such item in your queue.")
    return assignment


def llm_verdicts_for_rater(
    *,
    pair: CandidatePair,
    user,
    project: Project | None = None,
    policy=None,
    visible: bool | None = None,
) -> dict[str, list[str]]:
    """LLM choices per facet key (as stored) that this rater may see now; {} when blind.

    `project`, `policy` and `visible` (already known visibility) save queries when known.
    """
    if visible is None:
        visible = llm_verdicts_visible(
            project=project or pair.post.project, user=user, pair=pair, policy=policy
        )
    if not visible:
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
        # The pair's row lock makes submits on one pair take turns: the overlap recount below
        # and the consensus update (in this transaction) each see the answers before them.
        assignment = _locked_assignment(assignment_id=assignment_id, user=user, lock_pair=True)
        if assignment.status == AssignmentStatus.DONE:
            return assignment, False
        if assignment.status == AssignmentStatus.SKIPPED:
            raise ApplicationError("You skipped this item; it is no longer yours.", status_code=409)
        now = timezone.now()
        project = assignment.project
        if assignment.reserved_until <= now:
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
        if assignment.member_role is None:
            raise NotFound("No such pair.")
        facets = list(Facet.objects.filter(project=project, is_active=True))
        missing = [f.label for f in facets if answers.get(f.key) not in Choice.values]
        if missing:
            raise ApplicationError("Answer every facet; missing: " + ", ".join(missing) + ".")
        seconds = min(max((now - assignment.reserved_at).total_seconds(), 0.0), 86_399.0)
        policy = consensus_policy_get(project=project)
        # One read (under the pair's lock) for all three: the rater's own answers on this pair
        # (a resubmit, or blind-first: verdicts are visible once they exist), whether any LLM
        # verdict exists, and everything the consensus update blends.
        seen = list(
            Judgement.objects.filter(pair_id=assignment.pair_id).select_related("llm_verdict")
        )
        own = [j for j in seen if j.kind == JudgementKind.HUMAN and j.rater_user_id == user.pk]
        # Asked before the answers are stored: with blind-first on this is what the rater saw.
        llm_seen = any(j.kind == JudgementKind.LLM for j in seen) and (
            not policy.blind_first or bool(own)
        )
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
            role=assignment.member_role,
            existing=own,
            policy=policy,
            pair_locked=True,
            pair_judgements=seen,
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
