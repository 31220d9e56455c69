"""The raters' queue: reserve the next pair, submit, skip and undo, overlap-safe under concurrency.

Overlap N = distinct raters per pair. A rater's assignment counts against N while it is submitted
or reserved and not expired; expired reservations free their slot (reclaimed) without a sweeper.

The rules (which pair a rater may get, in which order, the overlap count, the reservation, the
submit guard) are written once, in rules.py, and both databases run those statements; only the
lock strategy differs. On PostgreSQL, Next first searches and reserves in one call of the
altpref_reserve_next function (rendered from the same rules): it locks the candidate pair row
with SELECT … FOR UPDATE SKIP LOCKED and counts the pair's active assignments again under that
lock, so two raters pressing Next together can never push a pair past N: the second one skips
the locked row and takes another pair. When every candidate was locked or just filled, the
same search runs statement by statement, waiting for the locks. SQLite serialises writers
(transactions begin IMMEDIATE), which is enough for the embedded default: it runs that second
form directly, without lock clauses. Submit within a live reservation is one read and one
guarded write (on PostgreSQL one statement for answers, pending consensus and done); anything
else takes a locked transaction. On PostgreSQL these statements are prepared once per
connection (core.db.PreparedCursor): on this path the ORM and the planner cost more than the
work.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery, Value
from django.utils import timezone

from annotate.models import Membership, Post, Project, Role
from core.db import PreparedCursor, as_saved, json_rows, statement_cursor
from core.errors import ApplicationError, NotFound
from core.validation import text_check_storable

from ..consensus.models import ConsensusPolicy
from ..consensus.selectors import gold_pair_for_rater
from ..marks import consensus_refresh_request, pairs_mark_changed
from ..models import (
    CHOICE_VALUES,
    Assignment,
    AssignmentStatus,
    CandidatePair,
    Choice,
    Facet,
    Judgement,
    JudgementKind,
    QueuePolicy,
    ShownOrder,
    SkipPolicy,
)
from ..services import judgements_plan_item
from . import rules
from .floor import queue_floor, queue_floor_lower
from .page import (
    RESERVE_NEXT_CALL,
    RESERVE_PAGE_SQL,
    ROLE_SQL,
    RaterState,
    assignment_from_row,
    json_column,
    page_from_row,
    rater_state,
)

# How many locked-out or just-filled candidates the fast search (altpref_reserve_next) tries
# before the waiting search takes over.
_NEXT_ATTEMPTS = 8


def assignment_current(*, project: Project, user) -> Assignment | None:
    """The rater's oldest live reservation in the project (what Next shows again)."""
    # A narrow query first: on the hot path the rater usually has none, and the joins for
    # rendering are only paid when there is one.
    current_id = (
        Assignment.objects.filter(rules.live_q(timezone.now()), project=project, rater=user)
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


def _reserve_pair(
    *, project: Project, user, pair_id: int, now, overlap: int | None
) -> Assignment | None:
    """Reserve `pair_id` for the rater by the queue's rule (rules.RESERVE): counted again when
    the statement runs, None when `overlap` other raters hold it (no count for gold pairs:
    `overlap` None). The caller holds the pair's row lock, or SQLite's write lock."""
    _commit_without_flush_wait()
    token = uuid.uuid4()
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "project": project.pk,
        "pair": pair_id,
        "user": user.pk,
        "order": random.choice([ShownOrder.AB, ShownOrder.BA]).value,
        "token": Assignment._meta.get_field("token").get_db_prep_value(token, connection),
        "now": adapt(now),
        "until": adapt(now + timedelta(seconds=project.reservation_seconds)),
        "overlap": overlap,
    }
    with connection.cursor() as cursor:
        cursor.execute(rules.python(rules.RESERVE), params)
        row = cursor.fetchone()
    return None if row is None else Assignment(id=row[0], pair_id=pair_id, rater=user)


_PAGE_RELATED = ("post__image", "alt_a", "alt_b")


_RESERVE_NEXT_SQL = f"SELECT r_id, r_pair, r_order, r_at, r_until FROM {RESERVE_NEXT_CALL}"


def _reserve_next(*, project: Project, user, page_llm: bool | None = None) -> Assignment | None:
    """Search and reserve in one call of the altpref_reserve_next function (PostgreSQL; rendered
    from rules.py), in its own transaction: the reservation (its own
    columns only), or None when every open pair was locked by others or none is left.

    With `page_llm` (whether LLM verdicts may be shown) the same statement also reads the judge
    page of the reserved pair (page.RESERVE_PAGE_SQL), attached as `assignment.page`.

    The function turns synchronous_commit off for its transaction (a lost reservation is
    harmless): called inside a caller's transaction, that applies to the caller's commit too.
    """
    now = timezone.now()
    with PreparedCursor(connection) as cursor:
        floor = queue_floor(cursor, project, user)
        if floor is None:
            return None
        params = {
            "project": project.pk,
            "user": user.pk,
            "now": now,
            "until": now + timedelta(seconds=project.reservation_seconds),
            "overlap": project.overlap,
            "floor": floor,
            "order": random.choice([ShownOrder.AB, ShownOrder.BA]).value,
            "token": uuid.uuid4(),
            "attempts": _NEXT_ATTEMPTS,
            "llm": page_llm,
        }
        sql = _RESERVE_NEXT_SQL if page_llm is None else RESERVE_PAGE_SQL
        row = cursor.execute(sql, params).fetchone()
    if row is None:
        return None
    if page_llm is not None:
        page = page_from_row(row, project=project, user=user)
        page.assignment.page = page
        return page.assignment
    pk, pair_id, order, reserved_at, reserved_until = row
    return _reservation(
        pk, project=project, pair_id=pair_id, user=user, order=order, token=params["token"],
        reserved_at=reserved_at, reserved_until=reserved_until,
    )  # fmt: skip


def _reservation(pk: int, *, project: Project, pair_id: int, user, order: str, **columns):
    """A live reservation from its columns (unsaved: its related rows load on access)."""
    return Assignment(
        id=pk,
        project=project,
        pair_id=pair_id,
        rater=user,
        status=AssignmentStatus.RESERVED,
        shown_order=order,
        **columns,
    )


def _with_related(assignment_id: int, *, project: Project) -> Assignment:
    """The assignment with everything the judge screen shows, in one query."""
    assignment = Assignment.objects.select_related(
        *(f"pair__{name}" for name in _PAGE_RELATED)
    ).get(pk=assignment_id)
    assignment.project = project
    return assignment


def assignment_next(
    *, project: Project, user, state: RaterState | None = None, with_page: bool = False
) -> Assignment | None:
    """Reserve the most useful open pair for `user` in `project`, or None when none is left.

    Most useful: pairs other raters have started (finishing them completes items), then pairs
    without a known answer, then the oldest. Never a pair this rater already has (submitted,
    skipped, or live), never one that has N active raters. The rater's live reservation, if
    any, is returned again (Next is idempotent while reserved). `state` is the rater's state
    (role checked, policy, live reservation) when the caller has just read it with
    page.rater_state; otherwise it is read here (NotFound for non-members). With
    `with_page`, a pair reserved on PostgreSQL's fast path comes with its judge page already
    read (`assignment.page`, a JudgePage) in the same round trip.

    The returned assignment carries `policy` (the project's ConsensusPolicy) and
    `llm_visible` (whether LLM verdicts may be shown: False for a pair reserved just now under
    blind-first, None for "decide by the rule"). On PostgreSQL it holds only its own columns;
    related rows load on access (the judge screen reads them with page.judge_page).
    """
    if state is None:
        state = rater_state(user=user, project_id=project.pk)
    policy = state.policy
    if state.current is not None:
        current_id, pair_id, shown_order = state.current
        # Its own columns only: the judge screen reads the page with page.judge_page.
        current = _reservation(
            current_id, project=project, pair_id=pair_id, user=user, order=shown_order
        )
        return _fresh(current, policy=policy)
    # Gold (known-answer) pairs come only through this draw, at the project's rate, and are
    # served like any other pair so raters cannot tell them apart.
    gold = gold_pair_for_rater(project=project, user=user, policy=policy)
    if gold is not None:
        with transaction.atomic():
            reserved = _reserve_pair(
                project=project, user=user, pair_id=gold.pk, now=timezone.now(), overlap=None
            )
        return _fresh(_with_related(reserved.pk, project=project), policy=policy)
    if connection.vendor == "postgresql":
        # The rules' search in one round trip, skipping rows other raters are locking
        # (altpref_reserve_next). A pair reserved now was never judged by this rater (the
        # search excludes judged pairs): its LLM verdicts show only when blind-first is off.
        page_llm = (not policy.blind_first) if with_page else None
        reserved = _reserve_next(project=project, user=user, page_llm=page_llm)
        if reserved is not None:
            return _fresh(reserved, policy=policy, judged=False)
    # Every open pair may just be locked by raters reserving right now (or this is SQLite,
    # which serialises writers instead): the same search, waiting for locks rather than
    # reporting an empty queue, then the count again (a new statement sees every committed
    # reservation).
    return _reserve_open_waiting(project=project, user=user, policy=policy, tried=[])


def _reserve_open_waiting(
    *, project: Project, user, policy, tried: list[int], with_skipped: bool = True
) -> Assignment | None:
    """Next's search and reservation (see assignment_next) as statements run one by one, from
    the project's first pair, waiting for row locks (PostgreSQL; SQLite serialises writers):
    never one of the `tried` pairs. The same rules as altpref_reserve_next (rules.py)."""
    with transaction.atomic():
        now = timezone.now()
        # Until the search finds nothing, not a fixed number of tries: every pair it returns
        # is one it will not return again (`tried`). With a fixed number, raters racing over
        # the same open pairs (20 of them on a project with a long history, bench_rating
        # --prefill 1000000) were told their queue was empty while thousands were open.
        while (pair_id := _open_pair(project=project, user=user, now=now, tried=tried)) is not None:
            reserved = _reserve_pair(
                project=project, user=user, pair_id=pair_id, now=now, overlap=project.overlap
            )
            if reserved is not None:
                return _fresh(
                    _with_related(reserved.pk, project=project), policy=policy, judged=False
                )
            tried.append(pair_id)
        skipped = _next_skipped(project=project, user=user, now=now) if with_skipped else None
        return (
            _fresh(_with_related(skipped.pk, project=project), policy=policy) if skipped else None
        )


def _open_pair(*, project: Project, user, now, tried: list[int]) -> int | None:
    """The most useful open pair for the rater (rules.SEARCH_STEPS), its row locked."""
    params = {
        "project": project.pk,
        "user": user.pk,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": project.overlap,
        "floor": 0,  # from the first pair: this search also finds pairs an undo reopened
        "tried": rules.tried_param(tried),
    }
    lock = rules.lock_pair(wait=True)
    # The first step (pairs other raters have started) only where a pair takes several.
    steps = rules.SEARCH_STEPS if project.overlap > 1 else rules.SEARCH_STEPS[1:]
    with connection.cursor() as cursor:
        for step in steps:
            cursor.execute(rules.python(step, lock=lock), params)
            row = cursor.fetchone()
            if row is not None:
                return row[0]
    return None


def assignment_prefetch(*, project: Project, user, policy, current_id: int) -> Assignment | None:
    """The item after `current_id`, reserved while the rater is still on that one, so the
    judge screen can show it the moment they submit: their other live reservation if they
    have one, else a newly reserved pair, by the same rules as Next (gold draw, most useful
    open pair, row locks and the overlap recount under them). None when nothing else is open.

    Next still serves the oldest live reservation first, so the current item stays current;
    the prefetched one holds its slot like any reservation and expires like one. Off the
    rating hot path (the statement-by-statement search, PostgreSQL and SQLite alike).
    """
    now = timezone.now()
    mine = Assignment.objects.filter(rules.live_q(now), project=project, rater=user)
    current = (
        Assignment.objects.filter(pk=current_id, rater=user)
        .values_list("pair_id", "reserved_at")
        .first()
    )
    if current is None:
        return None
    current_pair, current_at = current
    # Only one reserved after the current item is "next": an older one is an item being
    # submitted right now, or one the rater left for this one.
    other = (
        mine.exclude(pk=current_id)
        .filter(reserved_at__gt=current_at)
        .order_by("reserved_at", "id")
        .values_list("id", flat=True)
    )
    if other_id := other.first():
        return _fresh(_with_related(other_id, project=project), policy=policy, judged=False)
    gold = gold_pair_for_rater(project=project, user=user, policy=policy)
    if gold is not None:
        with transaction.atomic():
            reserved = _reserve_pair(
                project=project, user=user, pair_id=gold.pk, now=now, overlap=None
            )
        return _fresh(_with_related(reserved.pk, project=project), policy=policy, judged=False)
    # Never the current pair again (the search does not skip the rater's live reservation:
    # Next never searches while there is one), and never a skipped one (that comes back only
    # when nothing else is left, through Next).
    return _reserve_open_waiting(
        project=project, user=user, policy=policy, tried=[current_pair], with_skipped=False
    )


def assignment_activate(*, assignment_id: int, user) -> bool:
    """A prefetched item is now on the rater's screen: its time starts now (seconds spent per
    item stay honest) and its reservation runs from now. False when it is no longer the
    rater's live reservation (expired and taken, or gone)."""
    now = timezone.now()
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(no_key=True)
            .select_related("project")
            .filter(rules.live_q(now), pk=assignment_id, rater=user)
            .first()
        )
        if assignment is None:
            return False
        assignment.reserved_at = now
        assignment.reserved_until = now + timedelta(seconds=assignment.project.reservation_seconds)
        assignment.save(update_fields=["reserved_at", "reserved_until"])
        return True


def _fresh(assignment: Assignment, *, policy, judged: bool | None = None) -> Assignment:
    assignment.policy = policy
    # With blind-first, verdicts show only once the rater has judged the pair; unknown -> ask.
    assignment.llm_visible = (not policy.blind_first) or (None if judged is None else judged)
    return assignment


def _next_skipped(*, project: Project, user, now) -> Assignment | None:
    """The rater's oldest skipped item with a free slot again, reserved (skip policy "later")."""
    policy = QueuePolicy.objects.filter(project=project).values_list("skip_policy", flat=True)
    if (policy.first() or SkipPolicy.OTHERS) != SkipPolicy.LATER:
        return None
    params = {
        "project": project.pk,
        "user": user.pk,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": project.overlap,
    }
    with connection.cursor() as cursor:
        cursor.execute(rules.python(rules.SKIPPED, lock=rules.lock_pair(wait=True)), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return _reserve_pair(
        project=project, user=user, pair_id=row[0], now=now, overlap=project.overlap
    )


def _locked_assignment(*, assignment_id: int, user) -> Assignment:
    """The rater's assignment, row-locked, with its pair, project and the rater's current role
    in the project (`member_role`; None when no longer a member) in one query."""
    role = (
        Value(Role.ADMIN)
        if user.is_staff
        else Subquery(
            Membership.objects.filter(project=OuterRef("project_id"), user=user).values("role")[:1]
        )
    )
    assignment = (
        Assignment.objects.select_for_update(of=("self",), no_key=True)
        .select_related("pair__post__project", "project")
        .annotate(member_role=role)
        .filter(pk=assignment_id, rater=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such item in your queue.")
    return assignment


def displayed_to_stored(*, choice: str, shown_order: str) -> str:
    """Map a choice about the sides as shown (A = left) to the pair as stored."""
    if shown_order == ShownOrder.BA and choice in (Choice.A, Choice.B):
        return Choice.B if choice == Choice.A else Choice.A
    return choice


@dataclass
class _SubmitItem:
    """What Submit reads of the assignment, its pair and project (under their row locks on
    the locked path)."""

    assignment: Assignment  # with pair (and pair.post.project_id)
    role: str | None  # the rater's current role in the project; None: no longer a member
    overlap: int
    facets: list[Facet]  # active, in screen order
    own: list[Judgement]  # the rater's human judgements on the pair
    llm_exists: bool  # whether any LLM verdict exists for the pair
    blind_first: bool


@cache
def _submit_read_sql(vendor: str, *, lock: bool) -> str:
    """Submit's read: the assignment, pair, project, the rater's role, the active facets, the
    rater's own answers, whether LLM verdicts exist and the blind-first policy, in one
    statement on either database; with `lock`, PostgreSQL locks the assignment and pair rows
    (SQLite serialises writers instead)."""
    facets = json_rows(
        ("f.id", "f.key", "f.label", "f.required"),
        "preferences_facet f WHERE f.project_id = a.project_id AND f.is_active",
        order="f.position, f.id",
        vendor=vendor,
    )
    own = json_rows(
        ("j.id", "j.facet_id", "j.choice", "j.client_key"),
        "preferences_judgement j WHERE j.pair_id = a.pair_id"
        " AND j.rater_user_id = %(user)s AND j.kind = 'human'",
        vendor=vendor,
    )
    sql = f"""
    SELECT a.project_id, a.pair_id, a.status, a.shown_order, a.token, a.reserved_at,
           a.reserved_until, p.post_id, pr.overlap,
           {ROLE_SQL.format(project="a.project_id")},
           {facets},
           {own},
           EXISTS (SELECT 1 FROM preferences_judgement j
                   WHERE j.pair_id = a.pair_id AND j.kind = 'llm'),
           (SELECT cp.blind_first FROM consensus_consensuspolicy cp
            WHERE cp.project_id = a.project_id)
    FROM preferences_assignment a
    JOIN preferences_candidatepair p ON p.id = a.pair_id
    JOIN annotate_project pr ON pr.id = a.project_id
    WHERE a.id = %(id)s AND a.rater_id = %(user)s"""
    return sql + "\n    FOR NO KEY UPDATE OF a, p" if lock and vendor == "postgresql" else sql


# PostgreSQL: the answers, the pair marked pending for the consensus refresh, and the assignment
# done (rules.SUBMIT_DONE), in one statement. A concurrent double submit waits for the row,
# then finds it done and writes nothing.
_SUBMIT_WRITE_SQL = (
    """
    WITH done AS ("""
    + rules.python(rules.SUBMIT_DONE, vendor="postgresql")
    + """
    ), answers AS (
        INSERT INTO preferences_judgement
            (pair_id, facet_id, kind, rater_user_id, rater_llm_id, choice, shown_order,
             seconds_spent, rationale, client_key, llm_verdict_visible, created_at)
        SELECT %(pair)s::bigint, t.facet, 'human', %(user)s::integer, NULL, t.choice,
               %(order)s::varchar, %(seconds)s::float8, %(rationale)s::text, t.client_key,
               %(llm)s::boolean, %(now)s::timestamptz
        FROM unnest(%(facets)s::bigint[], %(choices)s::text[], %(keys)s::text[])
             AS t(facet, choice, client_key)
        WHERE EXISTS (SELECT 1 FROM done)
        RETURNING 1
    ), pending AS (
        INSERT INTO consensus_consensuspending (pair_id, project_id, marked_at)
        SELECT %(pair)s::bigint, %(project)s::bigint, %(now)s::timestamptz
        WHERE %(changed)s::boolean AND EXISTS (SELECT 1 FROM done)
        ON CONFLICT (pair_id) DO NOTHING
    )
    SELECT COUNT(*) FROM done"""
)


def _submit_read(*, assignment_id: int, user, lock: bool) -> _SubmitItem | None:
    params = {"id": assignment_id, "user": user.pk, "staff": user.is_staff}
    with statement_cursor(connection) as cursor:
        cursor.execute(_submit_read_sql(connection.vendor, lock=lock), params)
        row = cursor.fetchone()
    if row is None:
        return None
    (project_id, pair_id, status, order, token, reserved_at, reserved_until, post_id, overlap,
     role, facets, own, llm_exists, blind_first) = row  # fmt: skip
    post = as_saved(Post(id=post_id, project_id=project_id))
    assignment = assignment_from_row(
        (assignment_id, status, order, token, reserved_at, reserved_until, None),
        project_id=project_id,
        pair=as_saved(CandidatePair(id=pair_id, post=post)),
        rater=user,
    )
    return _SubmitItem(
        assignment=assignment,
        role=role,
        overlap=overlap,
        facets=[
            as_saved(Facet(id=i, project_id=project_id, key=k, label=label, required=bool(req)))
            for i, k, label, req in json_column(facets) or []
        ],
        own=[
            as_saved(
                Judgement(
                    id=i,
                    pair_id=pair_id,
                    facet_id=f,
                    kind=JudgementKind.HUMAN,
                    rater_user=user,
                    choice=c,
                    client_key=key,
                )
            )
            for i, f, c, key in json_column(own) or []
        ],
        llm_exists=bool(llm_exists),
        blind_first=_POLICY_BLIND_FIRST if blind_first is None else bool(blind_first),
    )


_POLICY_BLIND_FIRST = ConsensusPolicy._meta.get_field("blind_first").default


def _submit_write(*, item: _SubmitItem, new: list[Judgement], now, guard: bool = False) -> bool:
    """Store the new answers and mark the assignment done (rules.SUBMIT_DONE); False when
    `guard` found the reservation no longer live (nothing written)."""
    assignment = item.assignment
    try:
        if connection.vendor == "postgresql":
            written = _submit_write_one_statement(
                assignment=assignment, new=new, now=now, guard=guard
            )
            if written and new:  # the statement marked the pair itself
                project_id = assignment.project_id
                transaction.on_commit(lambda: consensus_refresh_request(project_id=project_id))
        else:
            # SQLite has no data-modifying WITH: the same steps in one transaction.
            with transaction.atomic(), connection.cursor() as cursor:
                params = {
                    "id": assignment.pk,
                    "user": assignment.rater_id,
                    "now": connection.ops.adapt_datetimefield_value(now),
                    "guard": guard,
                }
                cursor.execute(rules.python(rules.SUBMIT_DONE), params)
                written = cursor.fetchone() is not None
                if written and new:
                    Judgement.objects.bulk_create(new)
                    pairs_mark_changed(
                        project_id=assignment.project_id, pair_ids=[assignment.pair_id]
                    )
    except IntegrityError:
        # A concurrent identical write won (unique answer per rater, facet and pair).
        raise ApplicationError(
            "These answers were changed by another request at the same moment; reload and retry.",
            status_code=409,
        ) from None
    if written:
        assignment.status = AssignmentStatus.DONE
        assignment.submitted_at = now
    return bool(written)


def _submit_write_one_statement(*, assignment: Assignment, new: list[Judgement], now, guard) -> int:
    first = new[0] if new else None
    params = {
        "id": assignment.pk,
        "pair": assignment.pair_id,
        "project": assignment.project_id,
        "user": assignment.rater_id,
        "order": first and first.shown_order,
        "seconds": first and first.seconds_spent,
        "rationale": first.rationale if first else "",
        "llm": bool(first and first.llm_verdict_visible),
        "now": now,
        "facets": [j.facet_id for j in new],
        "choices": [j.choice for j in new],
        "keys": [j.client_key for j in new],
        "changed": bool(new),
        "guard": guard,
    }
    with PreparedCursor(connection) as cursor:
        return cursor.execute(_SUBMIT_WRITE_SQL, params).fetchone()[0]


def _submit_plan(
    *, item: _SubmitItem, user, answers: dict[str, str], rationale: str, now
) -> list[Judgement]:
    """Submit's rules for a reservation it may write: the new answers to store (unsaved)."""
    assignment = item.assignment
    if item.role is None:
        raise NotFound("No such pair.")
    # A required facet must be answered; an optional one may be left blank (nothing stored),
    # but an answer given to it must be a valid one.
    missing = [
        f.label
        for f in item.facets
        if answers.get(f.key) not in CHOICE_VALUES and (f.required or answers.get(f.key))
    ]
    if missing:
        raise ApplicationError("Answer every facet; missing: " + ", ".join(missing) + ".")
    seconds = min(max((now - assignment.reserved_at).total_seconds(), 0.0), 86_399.0)
    # Asked before the answers are stored: with blind-first on this is what the rater saw
    # (verdicts become visible once the rater's own answers exist).
    llm_seen = item.llm_exists and (not item.blind_first or bool(item.own))
    _stored, new = judgements_plan_item(
        pair=assignment.pair,
        user=user,
        choices={
            facet: displayed_to_stored(
                choice=answers[facet.key], shown_order=assignment.shown_order
            )
            for facet in item.facets
            if answers.get(facet.key)
        },
        shown_order=assignment.shown_order,
        seconds_spent=seconds,
        rationale=rationale.strip(),
        client_key_prefix=assignment.token.hex,
        llm_verdict_visible=llm_seen,
        role=item.role,
        existing=item.own,
    )
    return new


def assignment_submit(
    *, assignment_id: int, user, answers: dict[str, str], rationale: str = ""
) -> tuple[Assignment, bool]:
    """Record the rater's answers (facet key -> choice as displayed); return (assignment, created).

    A resubmitted form (double click, network retry) finds the assignment already done and
    stores nothing more. Every active facet must be answered. The pair is marked pending in
    the same transaction and its consensus rebuilt soon after, off the request.

    A submit within its live reservation takes a read, then one guarded write (the
    reservation holds its slot, so the overlap cannot move); on PostgreSQL that is two
    statements and no transaction of its own. Anything else (done, skipped, expired, or
    changed in between) takes the locked path below.
    """
    text_check_storable(rationale, what="The rationale")
    item = _submit_read(assignment_id=assignment_id, user=user, lock=False)
    if item is None:
        raise NotFound("No such item in your queue.")
    now = timezone.now()
    assignment = item.assignment
    if rules.is_live(assignment, now):
        new = _submit_plan(item=item, user=user, answers=answers, rationale=rationale, now=now)
        if _submit_write(item=item, new=new, now=now, guard=True):
            return assignment, True
    with transaction.atomic():
        # The pair's row lock makes submits on one pair take turns: the overlap recount below
        # sees the answers before it.
        item = _submit_read(assignment_id=assignment_id, user=user, lock=True)
        if item is None:
            raise NotFound("No such item in your queue.")
        assignment = item.assignment
        if assignment.status == AssignmentStatus.DONE:
            return assignment, False
        if assignment.status == AssignmentStatus.SKIPPED:
            raise ApplicationError("You skipped this item; it is no longer yours.", status_code=409)
        now = timezone.now()
        if assignment.reserved_until <= now:
            with connection.cursor() as cursor:
                cursor.execute(
                    rules.python(rules.OTHERS_ACTIVE),
                    {
                        "pair": assignment.pair_id,
                        "user": user.pk,
                        "now": connection.ops.adapt_datetimefield_value(now),
                    },
                )
                taken = cursor.fetchone()[0]
            if taken >= item.overlap:
                raise ApplicationError(
                    "Your reservation for this item ran out and other raters took it; "
                    "your answers were not stored. Press Next for a new item.",
                    status_code=409,
                )
        new = _submit_plan(item=item, user=user, answers=answers, rationale=rationale, now=now)
        _submit_write(item=item, new=new, now=now)
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
        pairs_mark_changed(project_id=assignment.project_id, pair_ids=[assignment.pair_id])
        assignment.status = AssignmentStatus.RESERVED
        assignment.submitted_at = None
        assignment.save(update_fields=["status", "submitted_at"])
        queue_floor_lower(project=assignment.project, pair_id=assignment.pair_id)
        return assignment
