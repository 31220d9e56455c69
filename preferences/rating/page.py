"""Reads for the judge screen: the rater's state in a project, and everything one item's page
shows. The queue's hot path: each is one SQL statement on either database (the ORM spent more
time building these queries than PostgreSQL spent answering them), prepared once per
connection on PostgreSQL (core.db.statement_cursor). What differs by database is rendered, not
written twice: JSON rows (core.db.json_rows) and the rater's progress, which PostgreSQL keeps in
a row by triggers and SQLite counts from the history (selectors.rater_progress).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache

from django.db import connection
from django.utils import timezone

from annotate.models import AltText, Image, Post, Project
from core.db import as_saved, json_rows, raw_value, statement_cursor
from core.errors import NotFound

from ..consensus.models import ConsensusPolicy
from ..models import Assignment, CandidatePair, Facet
from ..selectors import progress_dict, rater_progress
from .rules import LIVE


@dataclass
class RaterState:
    project: Project
    role: str
    # The project's policy. On PostgreSQL only the fields the queue reads (blind_first,
    # gold_rate) come from the database; the others keep their defaults.
    policy: ConsensusPolicy
    # The rater's oldest live reservation in the project: (id, pair id, shown order).
    current: tuple[int, int, str] | None
    started: bool  # whether the rater has ever had an item of the project


@dataclass
class JudgePage:
    assignment: Assignment  # with pair, post, image and both alt-texts loaded
    facets: list[Facet]
    llm: dict[str, list[str]] = field(default_factory=dict)  # facet key -> stored choices
    undo_id: int | None = None  # the submission `u` would undo
    progress: dict = field(default_factory=dict)


ROLE_SQL = """CASE WHEN CAST(%(staff)s AS boolean) THEN 'admin' ELSE
    (SELECT m.role FROM annotate_membership m
     WHERE m.project_id = {project} AND m.user_id = %(user)s) END"""

_STATE_SQL = f"""
    SELECT pr.id, pr.name, pr.guidelines, pr.overlap, pr.reservation_seconds, pr.created_at,
           {ROLE_SQL.format(project="pr.id")},
           cp.id, cp.blind_first, cp.gold_rate, cur.id, cur.pair_id, cur.shown_order,
           cur.id IS NOT NULL OR EXISTS (SELECT 1 FROM preferences_assignment a
                                         WHERE a.rater_id = %(user)s AND a.project_id = pr.id)
    FROM annotate_project pr
    LEFT JOIN consensus_consensuspolicy cp ON cp.project_id = pr.id
    -- The rater's oldest live reservation (an index scan on the subquery's id on PostgreSQL).
    LEFT JOIN preferences_assignment cur ON cur.id = (
        SELECT a.id FROM preferences_assignment a
        WHERE a.rater_id = %(user)s AND a.project_id = pr.id
        AND {LIVE.format(a="a", now="%(now)s")} ORDER BY a.reserved_at, a.id LIMIT 1)
    WHERE pr.id = %(project)s"""


def rater_state(*, user, project_id: int) -> RaterState:
    """The project, the user's role, the policy and the user's live reservation, or NotFound
    for a project the user is not a member of (staff act as admins)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = {"project": project_id, "user": user.pk, "staff": user.is_staff, "now": now}
    with statement_cursor(connection) as cursor:
        cursor.execute(_STATE_SQL, params)
        row = cursor.fetchone()
    if row is None or row[6] is None:
        raise NotFound("No such project.")
    (pid, name, guidelines, overlap, seconds, created, role, cp_id, blind, gold,
     current_id, current_pair_id, current_order, started) = row  # fmt: skip
    project = as_saved(
        Project(
            id=pid,
            name=name,
            guidelines=guidelines,
            overlap=overlap,
            reservation_seconds=seconds,
            created_at=raw_value(Project, "created_at", created),
        )
    )
    # Only the fields the queue reads (blind_first, gold_rate) come from the database; the
    # others keep their defaults.
    policy = (
        as_saved(
            ConsensusPolicy(id=cp_id, project=project, blind_first=bool(blind), gold_rate=gold)
        )
        if cp_id is not None
        else ConsensusPolicy(project=project)
    )
    return RaterState(
        project=project,
        role=role,
        policy=policy,
        current=current_id and (current_id, current_pair_id, current_order),
        started=bool(started),
    )


# The rater's progress (selectors.rater_progress): on PostgreSQL from the rater's progress row,
# kept by triggers (preferences/sql/rater_progress_v1.sql): counting it from the history here
# read every item the rater had done in the project, on every Next. SQLite has no such
# triggers: there the columns are NULL and page_from_row counts from the history instead.
_PG_PROGRESS_COLUMNS = """COALESCE((SELECT rp.items_done FROM preferences_raterprogress rp
                     WHERE rp.rater_id = a.rater_id AND rp.project_id = a.project_id), 0),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds::float8)
            FROM preferences_raterprogress rp,
                 jsonb_array_elements_text(rp.recent_seconds) AS s(seconds)
            WHERE rp.rater_id = a.rater_id AND rp.project_id = a.project_id)"""


def _page_sql(vendor: str, *, assignment: str, where: str) -> str:
    """One item's page: the assignment (`assignment`, a table or a subquery as a), its pair,
    post, image, both alt-texts, the facets, the LLM verdicts the rater may see, the undo
    link and the rater's progress."""
    facets = json_rows(
        ("f.id", "f.key", "f.label", "f.question", "f.position", "f.required"),
        "preferences_facet f WHERE f.project_id = a.project_id AND f.is_active",
        order="f.position, f.id",
        vendor=vendor,
    )
    llm = json_rows(
        ("f.key", "j.choice"),
        "preferences_judgement j JOIN preferences_facet f ON f.id = j.facet_id"
        " WHERE j.pair_id = a.pair_id AND j.kind = 'llm'",
        order="j.id",
        vendor=vendor,
    )
    return f"""
    SELECT a.id, a.project_id, a.pair_id, a.rater_id, a.status, a.shown_order, a.token,
           a.reserved_at, a.reserved_until, a.submitted_at,
           p.post_id, p.alt_a_id, p.alt_b_id, p.source, p.known_preference,
           po.platform, po.context, po.external_id, po.image_id,
           im.sha256, im.width, im.height, aa.text, ab.text,
           {facets},
           -- LLM verdicts only when the rater may see them: %(llm)s is true, false, or null
           -- for "once the rater has judged the pair" (blind-first on an item judged before).
           CASE WHEN CAST(%(llm)s AS boolean) OR (CAST(%(llm)s AS boolean) IS NULL AND EXISTS (
                    SELECT 1 FROM preferences_judgement h WHERE h.pair_id = a.pair_id
                    AND h.rater_user_id = a.rater_id AND h.kind = 'human'))
           THEN {llm} END,
           (SELECT u.id FROM preferences_assignment u
            WHERE u.rater_id = a.rater_id AND u.project_id = a.project_id AND u.status = 'done'
            AND u.reserved_until > %(now)s ORDER BY u.submitted_at DESC, u.id DESC LIMIT 1),
           {_PG_PROGRESS_COLUMNS if vendor == "postgresql" else "NULL, NULL"}
    FROM {assignment} a
    JOIN preferences_candidatepair p ON p.id = a.pair_id
    JOIN annotate_post po ON po.id = p.post_id
    JOIN annotate_image im ON im.id = po.image_id
    JOIN annotate_alttext aa ON aa.id = p.alt_a_id
    JOIN annotate_alttext ab ON ab.id = p.alt_b_id
    {where}"""


@cache
def _assignment_page_sql(vendor: str) -> str:
    """One assignment's page, as this database runs it."""
    return _page_sql(vendor, assignment="preferences_assignment", where="WHERE a.id = %(id)s")


# Next's search and reservation (altpref_reserve_next, rendered from rules.py), called by the
# queue alone or with the page below (PostgreSQL).
RESERVE_NEXT_CALL = """altpref_reserve_next(
        %(project)s::bigint, %(user)s::integer, %(now)s::timestamptz, %(until)s::timestamptz,
        %(overlap)s::integer, %(floor)s::bigint, %(order)s::varchar, %(token)s::uuid,
        %(attempts)s::integer)"""

# Next's reservation and the page of the pair it reserved, in one round trip: the reservation
# stands in for the assignment row, which this statement could not see (its snapshot was taken
# before the function inserted it). No row: nothing was free.
RESERVE_PAGE_SQL = _page_sql(
    "postgresql",
    assignment=f"""(
        SELECT r_id AS id, %(project)s::bigint AS project_id, r_pair AS pair_id,
               %(user)s::integer AS rater_id, 'reserved'::varchar AS status,
               r_order AS shown_order, %(token)s::uuid AS token, r_at AS reserved_at,
               r_until AS reserved_until, NULL::timestamptz AS submitted_at
        FROM {RESERVE_NEXT_CALL})""",
    where="",
)


def judge_page(
    *, assignment_id: int, project: Project, user, llm_visible: bool | None, policy=None
) -> JudgePage:
    """Everything the judge screen shows for one assignment (the caller has checked that it is
    the rater's). `llm_visible` is whether LLM verdicts may be shown, or None to decide by the
    policy's blind-first rule (shown once the rater has judged the pair)."""
    if policy is not None and not policy.blind_first:
        llm_visible = True
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = {"id": assignment_id, "llm": llm_visible, "now": now}
    with statement_cursor(connection) as cursor:
        cursor.execute(_assignment_page_sql(connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such item in your queue.")
    return page_from_row(row, project=project, user=user)


def page_from_row(row, *, project: Project, user) -> JudgePage:
    """The JudgePage of one row of _PAGE_SQL (or RESERVE_PAGE_SQL)."""
    (assignment_id, _project_id, pair_id, _rater_id, status, order, token, reserved_at,
     reserved_until, submitted, post_id, alt_a_id, alt_b_id, source, known, platform, context,
     external_id, image_id, sha256, width, height, text_a, text_b, facets, llm, undo_id,
     items_done, median) = row  # fmt: skip
    image = as_saved(Image(id=image_id, sha256=sha256, width=width, height=height))
    post = as_saved(
        Post(
            id=post_id,
            project=project,
            platform=platform,
            context=context,
            external_id=external_id,
            image=image,
        )
    )
    pair = as_saved(
        CandidatePair(
            id=pair_id,
            post=post,
            alt_a=as_saved(AltText(id=alt_a_id, post=post, text=text_a)),
            alt_b=as_saved(AltText(id=alt_b_id, post=post, text=text_b)),
            source=source,
            known_preference=known,
        )
    )
    assignment = assignment_from_row(
        (assignment_id, status, order, token, reserved_at, reserved_until, submitted),
        project=project,
        pair=pair,
        rater=user,
    )
    verdicts: dict[str, list[str]] = {}
    for key, choice in json_column(llm) or []:
        verdicts.setdefault(key, []).append(choice)
    return JudgePage(
        assignment=assignment,
        facets=[
            as_saved(
                Facet(
                    id=i,
                    project=project,
                    key=k,
                    label=lb,
                    question=q,
                    position=pos,
                    required=bool(r),
                )
            )
            for i, k, lb, q, pos, r in json_column(facets) or []
        ],
        llm=verdicts,
        undo_id=undo_id,
        progress=(
            progress_dict(items_done=items_done, median=median, corrections=None)
            if items_done is not None
            else rater_progress(project=project, user=user, with_corrections=False)
        ),
    )


def assignment_from_row(row, **related) -> Assignment:
    """A saved Assignment from its columns read by raw SQL (id, status, shown order, token,
    reserved at, reserved until, submitted at), converted as the ORM would, with `related`
    (project, pair, rater, or their ids) set as given."""
    pk, status, order, token, reserved_at, reserved_until, submitted = row
    return as_saved(
        Assignment(
            id=pk,
            status=status,
            shown_order=order,
            token=raw_value(Assignment, "token", token),
            reserved_at=raw_value(Assignment, "reserved_at", reserved_at),
            reserved_until=raw_value(Assignment, "reserved_until", reserved_until),
            submitted_at=raw_value(Assignment, "submitted_at", submitted),
            **related,
        )
    )


def json_column(value):
    # Django leaves json/jsonb results of raw SQL as text on psycopg 3.
    return json.loads(value) if isinstance(value, str) else value
