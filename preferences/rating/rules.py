"""The queue's rules, each written once, as SQL that both databases run.

- Overlap: a rater's assignment holds one of a pair's N slots while it is submitted, or
  reserved and not expired (ACTIVE).
- Eligibility: a rater may get a pair that is not gold (gold comes through its own draw) and
  that they have never submitted, skipped or judged (NEVER_AGAIN): SEARCH_STEPS, in the order
  of usefulness, from a queue floor up (floor.py).
- Reservation: counted again when the pair is locked; one row per pair and rater (RESERVE).
- Submit: only within a live reservation (LIVE); the queue's Submit writes under it.

The statements are templates with named slots. `python()` fills them for a Django cursor
(`%(name)s` parameters) with a database's lock strategy: on PostgreSQL the chosen pair's row
is locked (FOR NO KEY UPDATE, waiting, or skipping rows other raters are locking), and the
count that follows in a new statement sees every reservation committed before the lock; SQLite
has no row locks and serialises writers instead (transactions begin IMMEDIATE, see
config/settings.py), so the same statements run without a lock clause. `reserve_function()`
fills the same templates into PostgreSQL's altpref_reserve_next, Next's search and
reservation in one round trip with plans made once per connection (migration preferences
0013 installs it; a test checks that the installed function is the one rendered here).
"""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import Q

from ..models import AssignmentStatus

# A live reservation: reserved and not expired (Next shows it again; Submit writes under it).
LIVE = "({a}.status = 'reserved' AND {a}.reserved_until > {now})"
# A slot of the pair's overlap: submitted, or a live reservation.
ACTIVE = "({a}.status = 'done' OR " + LIVE + ")"


def live_q(now) -> Q:
    """LIVE for the ORM (a test checks that the two select the same rows)."""
    return Q(status=AssignmentStatus.RESERVED, reserved_until__gt=now)


def is_live(assignment, now) -> bool:
    """LIVE for an assignment in hand."""
    return assignment.status == AssignmentStatus.RESERVED and assignment.reserved_until > now


# Full for good: N submitted assignments (only an undo takes one back).
NOT_FULL = """(SELECT COUNT(*) FROM preferences_assignment a
              WHERE a.pair_id = p.id AND a.status = 'done') < {overlap}"""

# Never again for this rater: a pair they submitted or skipped (any assignment of theirs that
# is not a reservation), or judged. "pair_id >= floor" is stated on o and j as well as on the
# pairs: PostgreSQL's generic plan merges the pairs with the rater's rows by pair, and without
# a lower bound it read all of the rater's rows from the first (12 ms for a rater with 10,000
# items; 2.2 ms with it).
NEVER_AGAIN = """NOT EXISTS (SELECT 1 FROM preferences_assignment o
                            WHERE o.pair_id = p.id AND o.pair_id >= {floor}
                            AND o.rater_id = {user} AND o.status <> 'reserved')
            AND NOT EXISTS (SELECT 1 FROM preferences_judgement j
                            WHERE j.pair_id = p.id AND j.pair_id >= {floor}
                            AND j.rater_user_id = {user} AND j.kind = 'human')"""

_ELIGIBLE = "p.source <> 'gold'\n            AND " + NEVER_AGAIN + "\n            AND {not_tried}"

# The most useful open pair for the rater, from the floor up, in three steps tried in order:
# pairs other raters have started (finishing them completes items; only with an overlap above
# one), then pairs without a known answer, then the rest; each in id order. Every step is an
# index-ordered scan from the floor, whatever the parameters.
_STARTED = (
    """SELECT p.id{into} FROM preferences_candidatepair p
            WHERE p.id IN (SELECT a.pair_id FROM preferences_assignment a
                           WHERE a.project_id = {project}
                           AND a.pair_id BETWEEN {floor} AND {top}
                           AND """
    + ACTIVE.format(a="a", now="{now}")
    + """
                           GROUP BY a.pair_id HAVING COUNT(*) < {overlap})
            -- Stated on p too: the pair scan then starts at the floor.
            AND p.id BETWEEN {floor} AND {top} AND """
    + _ELIGIBLE
    + """
            ORDER BY p.id LIMIT 1{lock}"""
)
_UNSTARTED = (
    """SELECT p.id{into} FROM preferences_candidatepair p
            JOIN annotate_post po ON po.id = p.post_id
            WHERE po.project_id = {project} AND p.id >= {floor}
            AND p.known_preference IS {known}
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment a
                            WHERE a.pair_id = p.id AND a.pair_id >= {floor}
                            AND """
    + ACTIVE.format(a="a", now="{now}")
    + """)
            AND """
    + _ELIGIBLE
    + """
            ORDER BY p.id LIMIT 1{lock}"""
)
SEARCH_STEPS = (
    _STARTED,
    _UNSTARTED.replace("{known}", "NULL"),
    _UNSTARTED.replace("{known}", "NOT NULL"),
)

# Reserve the pair if fewer than N other raters hold a slot, counted when the statement runs
# (after the search locked the pair); no overlap (NULL) for gold pairs, which every rater gets.
# The rater's own expired or skipped row for the pair is reused.
RESERVE = (
    """INSERT INTO preferences_assignment
            (project_id, pair_id, rater_id, status, shown_order, token, reserved_at,
             reserved_until, submitted_at)
        SELECT {project}, {pair}, {user}, 'reserved', {order}, {token}, {now}, {until}, NULL
        WHERE {overlap} IS NULL OR """
    + "(SELECT COUNT(*) FROM preferences_assignment a\n"
    "               WHERE a.pair_id = {pair} AND a.rater_id <> {user}\n"
    "               AND " + ACTIVE.format(a="a", now="{now}") + ") < {overlap}"
    """
        ON CONFLICT (pair_id, rater_id) DO UPDATE SET
            project_id = EXCLUDED.project_id, status = EXCLUDED.status,
            shown_order = EXCLUDED.shown_order, token = EXCLUDED.token,
            reserved_at = EXCLUDED.reserved_at, reserved_until = EXCLUDED.reserved_until,
            submitted_at = NULL
        RETURNING {returning}"""
)

# Slots held on the pair by raters other than this one (Submit after a reservation ran out).
OTHERS_ACTIVE = (
    "SELECT COUNT(*) FROM preferences_assignment a WHERE a.pair_id = {pair}"
    " AND a.rater_id <> {user} AND " + ACTIVE.format(a="a", now="{now}")
)

# Submit: the assignment done; with `guard` (the optimistic Submit, which read it without a
# lock) only while its reservation is still live, checked on the row as the statement finds it.
SUBMIT_DONE = (
    """UPDATE preferences_assignment SET status = 'done', submitted_at = {now}
        WHERE id = {id} AND rater_id = {user}
        AND (NOT {guard} OR """
    + LIVE.format(a="preferences_assignment", now="{now}")
    + """)
        RETURNING pair_id"""
)

# How many pairs the rater could still be served: not gold, not full, not theirs again.
REMAINING = (
    """SELECT COUNT(*) FROM preferences_candidatepair p
        JOIN annotate_post po ON po.id = p.post_id
        WHERE po.project_id = {project} AND p.source <> 'gold' AND """
    + NOT_FULL
    + "\n        AND "
    + NEVER_AGAIN
)

# The rater's skipped items that have a free slot again, oldest first (skip policy "later").
SKIPPED = (
    """SELECT s.pair_id FROM preferences_assignment s
        JOIN preferences_candidatepair p ON p.id = s.pair_id
        WHERE s.project_id = {project} AND s.rater_id = {user} AND s.status = 'skipped'
        AND (SELECT COUNT(*) FROM preferences_assignment a WHERE a.pair_id = s.pair_id
             AND """
    + ACTIVE.format(a="a", now="{now}")
    + """) < {overlap}
        ORDER BY s.reserved_at, s.id LIMIT 1{lock}"""
)

# Parameter slots, and their types where PostgreSQL binds on the server (PreparedCursor).
_TYPES = {
    "project": "bigint",
    "user": "integer",
    "now": "timestamptz",
    "until": "timestamptz",
    "overlap": "integer",
    "floor": "bigint",
    "order": "varchar",
    "token": "uuid",
    "pair": "bigint",
    "id": "bigint",
    "guard": "boolean",
}


def python(template: str, *, lock: str = "", vendor: str | None = None, **slots: str) -> str:
    """The template for a Django cursor or PreparedCursor on `vendor` (the connection's by
    default): slots become %(name)s parameters, typed on PostgreSQL (`tried` a list, `top` the
    project's last started pair); `lock` is the lock clause or empty."""
    vendor = vendor or connection.vendor
    if vendor == "postgresql":
        names = {name: f"%({name})s::{kind}" for name, kind in _TYPES.items()}
        not_tried = "NOT (p.id = ANY(%(tried)s::bigint[]))"
    else:
        names = {name: f"%({name})s" for name in _TYPES}
        not_tried = "p.id NOT IN (SELECT value FROM json_each(%(tried)s))"
    return template.format(
        **names,
        into="",
        lock=f" {lock}" if lock else "",
        not_tried=not_tried,
        top="(SELECT MAX(t.pair_id) FROM preferences_assignment t"
        f" WHERE t.project_id = {names['project']})",
        returning="id",
        **slots,
    )


def tried_param(pair_ids: list[int]):
    """The `tried` parameter of python()'s statements, as each database takes a list."""
    return list(pair_ids) if connection.vendor == "postgresql" else json.dumps(list(pair_ids))


def lock_pair(*, wait: bool) -> str:
    """The lock clause for the searched pair on this database: PostgreSQL locks its row
    (waiting, or skipping rows others hold); SQLite serialises writers and takes none."""
    if connection.vendor != "postgresql":
        return ""
    return "FOR NO KEY UPDATE OF p" + ("" if wait else " SKIP LOCKED")


_FUNCTION = """CREATE OR REPLACE FUNCTION altpref_reserve_next(
    p_project bigint, p_user integer, p_now timestamptz, p_until timestamptz,
    p_overlap integer, p_floor bigint, p_order varchar, p_token uuid, p_attempts integer)
RETURNS TABLE (r_id bigint, r_pair bigint, r_order varchar, r_at timestamptz,
               r_until timestamptz)
LANGUAGE plpgsql VOLATILE
-- At most one row: the planner then joins the judge page's rows to it by index (page.py).
ROWS 1
-- Generic plans, made once per connection: the statements below are index-ordered scans from
-- the floor up, whatever the parameters, and planning them afresh on every call (PL/pgSQL's
-- default, as the custom plans looked cheaper) cost three times what running them did.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_tried bigint[] := '{{}}';
    v_pair bigint;
    v_top bigint;
BEGIN
    -- A crash can lose a just-made reservation (the pair is simply free again), never
    -- push a pair past N: no need to wait for the WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR attempt IN 1..p_attempts LOOP
        v_pair := NULL;
        IF p_overlap > 1 THEN
            -- The started pairs lie between the floor and the project's last assignment. A
            -- closed range: the generic plan reads it from the (project, pair) index, where
            -- an open one (from the floor up) is costed as a third of the table and scanned.
            SELECT MAX(a.pair_id) INTO v_top FROM preferences_assignment a
            WHERE a.project_id = p_project;
            {started};
        END IF;
        IF v_pair IS NULL THEN
            {unknown};
        END IF;
        IF v_pair IS NULL THEN
            {known};
        END IF;
        EXIT WHEN v_pair IS NULL;
        RETURN QUERY
        {reserve};
        IF FOUND THEN
            RETURN;
        END IF;
        v_tried := v_tried || v_pair;
    END LOOP;
END
$fn$"""


def reserve_function() -> str:
    """CREATE OR REPLACE for altpref_reserve_next (PostgreSQL), from the templates above: the
    search steps skip rows other raters are locking; when all were locked or just filled the
    caller searches again with python()'s statements, waiting for locks. In a VOLATILE
    function each statement takes a new snapshot, so RESERVE's count sees every reservation
    committed before the search's lock was granted."""
    names = {name: f"p_{name}" for name in _TYPES} | {"pair": "v_pair"}
    slots = dict(
        names,
        into=" INTO v_pair",
        lock=" FOR NO KEY UPDATE OF p SKIP LOCKED",
        not_tried="NOT (p.id = ANY(v_tried))",
        top="v_top",
        returning="id, pair_id, shown_order::varchar, reserved_at, reserved_until",
    )
    started, unknown, known = (step.format(**slots) for step in SEARCH_STEPS)
    return _FUNCTION.format(
        started=started, unknown=unknown, known=known, reserve=RESERVE.format(**slots)
    )
