"""Where Next's search starts: the queue floors (PostgreSQL's fast path; see queue.py).

The project's floor: every pair of the project below it has N submitted (done) assignments, so
it is full for good and the searches above start there. Without it each Next walked every
finished pair of the project (2 ms at 500 done pairs, growing without bound). A done
assignment only goes back through undo (within its reservation); a pair below the floor
reopened that way (undone, then left to expire) is still served: by the waiting search when the
phases find nothing, and after the next full recount.

Each rater also has a floor of their own, at or above the project's: below it every pair is
full or one the rater has submitted, skipped or judged (never theirs again). Without it a
rater ahead of the others (alone in a project of overlap 2, or one of two raters where the
overlap is 3) had every pair they had done left open above the project floor, and each Next
walked all of them: 15 ms at 3,000 items done, growing without bound (bench_rating --raters 1).

Floors live in each process (`_FLOOR`) and are shared through Django's cache (Redis when
CACHE_URL is set): a web process that starts, or meets a rater for the first time, begins where
the others got to instead of at the project's first pair. Before, with a long history, the
first Nexts of every process and every rater walked all of it (bench_rating --prefill 1000000:
150-350 ms a statement, 4-5 s of PostgreSQL CPU per process, and with 20 raters racing over a
moving frontier some searches gave up and fell back to the unbounded waiting search). The
cache only seeds a floor; each process still moves its own and writes it back when it moved.
Floors are hints either way: a lost or stale cache entry costs a longer walk, never a pair.
"""

from __future__ import annotations

from django.core.cache import cache

from annotate.models import Project

from ..models import CandidatePair
from . import rules

# (project id, created_at, overlap) -> [floor, Nexts counted, the project's first pair, undo
# epoch], and with the epoch and the rater's id added -> [floor, Nexts counted]: per process,
# like the pair ids it holds; a changed overlap starts new floors. An undo starts a new epoch,
# so no process seeds a rater's floor from before it.
_FLOOR: dict[tuple, list[int]] = {}
_FLOOR_MAX_KEYS = 10_000  # raters x projects remembered per process before starting afresh
# Nexts between moving a floor up past pairs that filled: every 32 left 8 processes searching
# ~100 filled pairs a Next (bench_rating); a move is one short scan from the floor.
_FLOOR_ADVANCE_EVERY = 4
_FLOOR_RECOUNT_EVERY = 4096  # Nexts between recounts from the project's first pair
# A rater's Nexts between recounts of their floor from the project's: a pair reopened by an
# undo in another process is back within this many of the rater's Nexts (a recount walks the
# pairs the rater did above the project's floor: 12 ms at 6,500 of them).
_RATER_FLOOR_RECOUNT_EVERY = 256
_CACHE_TIMEOUT_S = 7 * 24 * 3600  # an idle project's floors are found again after a week

_FLOOR_SQL_TEMPLATE = """
    SELECT COALESCE(
        (SELECT p.id FROM preferences_candidatepair p JOIN annotate_post po ON po.id = p.post_id
         WHERE po.project_id = %(project)s AND p.id >= %(floor)s AND p.source <> 'gold'
         AND {not_full}{mine}
         ORDER BY p.id LIMIT 1),
        (SELECT MAX(p.id) + 1 FROM preferences_candidatepair p
         JOIN annotate_post po ON po.id = p.post_id WHERE po.project_id = %(project)s),
        %(floor)s)"""
_FLOOR_SQL = _FLOOR_SQL_TEMPLATE.format(
    not_full=rules.NOT_FULL.format(overlap="%(overlap)s"), mine=""
)
# The search's rule (rules.NEVER_AGAIN): a pair the rater has submitted or skipped, or judged,
# is never theirs again. Bench raters are the same users run after run, and without the rule's
# lower bound on the rater's rows each bench_rating run on the same database cost PostgreSQL
# more than the one before.
_RATER_FLOOR_SQL = _FLOOR_SQL_TEMPLATE.format(
    not_full=rules.NOT_FULL.format(overlap="%(overlap)s"),
    mine="\n         AND " + rules.NEVER_AGAIN.format(floor="%(floor)s", user="%(user)s"),
)


def _cache_key(key: tuple) -> str:
    project_id, created_at, overlap, *rater = key
    # created_at tells a project from a deleted one that had its id (SQLite reuses ids).
    return ":".join(["queue-floor", str(project_id), f"{created_at.timestamp():.6f}",
                     str(overlap), *map(str, rater)])  # fmt: skip


def queue_floor(cursor, project: Project, user) -> int | None:
    """Where Next's search starts for `user`: the rater's floor, never below the project's;
    None when the project has no pairs."""
    if len(_FLOOR) >= _FLOOR_MAX_KEYS:
        _FLOOR.clear()  # floors are only hints: they are found again
    key = (project.pk, project.created_at, project.overlap)
    state = _FLOOR.get(key) or _project_state_new(key, project)
    if state is None:
        return None
    params = {"project": project.pk, "overlap": project.overlap}
    floor = _floor_step(
        cursor, key, state, _FLOOR_SQL, params, lowest=state[2], recount=_FLOOR_RECOUNT_EVERY
    )
    # Kept only after its first move: meanwhile the process's other threads find no floor and
    # look for one themselves, instead of searching from the project's first pair.
    _FLOOR[key] = state
    rater_key = (*key, state[3], user.pk)
    mine = _FLOOR.get(rater_key) or _rater_state_new(rater_key, floor)
    params["user"] = user.pk
    floor = _floor_step(
        cursor, rater_key, mine, _RATER_FLOOR_SQL, params, lowest=floor,
        recount=_RATER_FLOOR_RECOUNT_EVERY,
    )  # fmt: skip
    _FLOOR[rater_key] = mine
    return floor


# A new floor state counts -1 Nexts when nothing was shared: its first Next moves it at once
# (from `lowest`: the project's first pair, or the project's floor for a rater).


def _project_state_new(key: tuple, project: Project) -> list[int] | None:
    shared = cache.get(_cache_key(key))
    if shared is not None:
        floor, first, epoch = shared
        return [floor, 0, first, epoch]
    first = CandidatePair.objects.filter(post__project=project).order_by("id")
    first = first.values_list("id", flat=True).first()
    return None if first is None else [first, -1, first, 0]


def _rater_state_new(key: tuple, project_floor: int) -> list[int]:
    shared = cache.get(_cache_key(key))
    return [project_floor, -1] if shared is None else [max(project_floor, shared), 0]


def _floor_step(cursor, key, state, sql: str, params: dict, *, lowest: int, recount: int) -> int:
    """Count a Next on a floor, move it up every _FLOOR_ADVANCE_EVERY Nexts (from `lowest`
    instead every `recount`), and return it, never below `lowest`."""
    state[1] = (state[1] + 1) % recount
    if state[1] % _FLOOR_ADVANCE_EVERY == 0:
        start = max(state[0], lowest) if state[1] else lowest
        before = state[0]
        state[0] = cursor.execute(sql, {**params, "floor": start}).fetchone()[0]
        if state[0] != before:  # shared: the project's (floor, first pair, epoch), a rater's floor
            value = (state[0], *state[2:]) if len(state) > 2 else state[0]
            cache.set(_cache_key(key), value, timeout=_CACHE_TIMEOUT_S)
    return max(state[0], lowest)


def queue_floor_lower(*, project: Project, pair_id: int) -> None:
    """An undo: its pair may reopen, so the floors go back below it, in this process and in
    the cache, where a new epoch leaves the raters' floors from before the undo behind."""
    key = (project.pk, project.created_at, project.overlap)
    seed = cache.get(_cache_key(key))
    epoch = (seed[2] if seed else 0) + 1
    for k, state in _FLOOR.items():
        if k[0] == project.pk and state[0] > pair_id:
            state[0] = pair_id
        if k == key:
            state[3] = max(state[3], epoch)
    if seed is not None:
        cache.set(
            _cache_key(key), (min(seed[0], pair_id), seed[1], epoch), timeout=_CACHE_TIMEOUT_S
        )


def queue_floor_forget(*, project: Project, rater_ids, using=None) -> None:
    """Drop a project's shared floors (the project's and these raters'), e.g. with the project:
    they would only expire. `using`: the cache the web processes share, if not this one's."""
    shared = using or cache
    key = (project.pk, project.created_at, project.overlap)
    seed = shared.get(_cache_key(key))
    epoch = seed[2] if seed else 0
    keys = [key, *((*key, epoch, rater_id) for rater_id in rater_ids)]
    shared.delete_many([_cache_key(k) for k in keys])
    for k in keys:
        _FLOOR.pop(k, None)
