"""Reads for the rating UI: review queue, effective labels, rater progress, project dashboard."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from itertools import combinations

from django.db.models import Count, OuterRef, Subquery

from annotate.models import AltText, AltTextOrigin, Membership, Project, Role
from core.errors import NotFound

from .models import (
    Assignment,
    AssignmentStatus,
    CandidatePair,
    Choice,
    CorrectionReview,
    Facet,
    Judgement,
    JudgementKind,
    ShownOrder,
)


def project_with_role_for_user(*, user, project_id: int) -> tuple[Project, str]:
    """The project and the user's role in it, in one query (the rating pages' hot path).

    The same rule as annotate.selectors.project_get_for_user at the annotator level:
    non-members get NotFound, staff act as admins.
    """
    qs = Project.objects.filter(pk=project_id)
    if not user.is_staff:
        qs = qs.annotate(
            member_role=Subquery(
                Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
            )
        )
    project = qs.first()
    role = Role.ADMIN if user.is_staff else getattr(project, "member_role", None)
    if project is None or role is None:
        raise NotFound("No such project.")
    return project, role


def review_queue(*, project: Project) -> list[dict]:
    """Pairs with a facet whose human (or human vs LLM) judgements disagree and no adjudication.

    Returns [{"pair_id", "facets": [facet ids]}] oldest pair first.
    """
    disputed = (
        Judgement.objects.filter(
            pair__post__project=project, kind__in=[JudgementKind.HUMAN, JudgementKind.LLM]
        )
        .values("pair_id", "facet_id")
        .annotate(n=Count("choice", distinct=True), humans=Count("rater_user"))
        .filter(n__gt=1, humans__gte=1)
    )
    adjudicated = set(
        Judgement.objects.filter(
            pair__post__project=project, kind=JudgementKind.ADJUDICATION
        ).values_list("pair_id", "facet_id")
    )
    by_pair: dict[int, list[int]] = defaultdict(list)
    for row in disputed:
        key = (row["pair_id"], row["facet_id"])
        if key not in adjudicated:
            by_pair[row["pair_id"]].append(row["facet_id"])
    return [{"pair_id": p, "facets": sorted(f)} for p, f in sorted(by_pair.items())]


def judgement_votes(*, pair: CandidatePair) -> dict[int, dict[str, Counter]]:
    """facet id -> {"human": Counter(choice), "llm": Counter(choice)} for one pair."""
    votes: dict[int, dict[str, Counter]] = defaultdict(
        lambda: {"human": Counter(), "llm": Counter()}
    )
    for facet_id, kind, choice in Judgement.objects.filter(
        pair=pair, kind__in=[JudgementKind.HUMAN, JudgementKind.LLM]
    ).values_list("facet_id", "kind", "choice"):
        votes[facet_id][kind][choice] += 1
    return votes


def judgement_effective_choice(*, pair: CandidatePair, facet: Facet) -> str | None:
    """The label exports should use: a reviewer's adjudication wins, else the human majority.

    None when there is no human judgement or the majority is split evenly.
    """
    adjudication = (
        Judgement.objects.filter(pair=pair, facet=facet, kind=JudgementKind.ADJUDICATION)
        .order_by("-created_at")
        .values_list("choice", flat=True)
        .first()
    )
    if adjudication:
        return adjudication
    counts = Counter(
        Judgement.objects.filter(pair=pair, facet=facet, kind=JudgementKind.HUMAN).values_list(
            "choice", flat=True
        )
    ).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def llm_suggestion_for(*, alt_text: AltText) -> AltText | None:
    """The newest LLM-corrected alt-text derived from `alt_text`, if the LLM side made one."""
    return (
        AltText.objects.filter(parent=alt_text, origin=AltTextOrigin.LLM_CORRECTED)
        .order_by("-created_at", "-id")
        .first()
    )


def llm_suggestion_model(*, suggestion: AltText | None) -> str:
    """The model that wrote an LLM suggestion, when the labelers recorded it ("" otherwise)."""
    provenance = getattr(suggestion, "llm_provenance", None) if suggestion else None
    labeler = getattr(provenance, "labeler", None)
    return getattr(labeler, "model_id", "") or ""


def correction_next(*, project: Project, user) -> AltText | None:
    """The next alt-text to correct: ones in pairs judged both-bad first, then authors' own.

    An alt-text leaves the queue once any rater has dealt with it.
    """
    reviewed = CorrectionReview.objects.values("alt_text_id")
    base = AltText.objects.filter(post__project=project).exclude(pk__in=reviewed)
    both_bad_pairs = Judgement.objects.filter(
        pair__post__project=project, choice=Choice.BOTH_BAD
    ).values("pair_id")
    bad_alts = set(
        CandidatePair.objects.filter(pk__in=both_bad_pairs).values_list("alt_a_id", "alt_b_id")
    )
    bad_ids = {a for pair in bad_alts for a in pair}
    if bad_ids:
        first_bad = base.filter(pk__in=bad_ids).exclude(origin=AltTextOrigin.LLM_CORRECTED)
        hit = first_bad.select_related("post__image").order_by("id").first()
        if hit:
            return hit
    return (
        base.filter(origin__in=[AltTextOrigin.USER_WRITTEN, AltTextOrigin.MODEL])
        .select_related("post__image")
        .order_by("id")
        .first()
    )


# The median seconds per item is taken over the rater's newest items: it shows the current
# pace, and reading it costs the same on a rater's first day as after ten thousand items.
PROGRESS_MEDIAN_ITEMS = 200


def rater_progress(*, project: Project, user, with_corrections: bool = True) -> dict:
    """A rater's own counts and median seconds per item (over the newest
    PROGRESS_MEDIAN_ITEMS submitted) in the project.

    Counted from the history. On PostgreSQL the judge screen reads the same numbers from the
    rater's progress row instead (models.RaterProgress, kept equal to this count by triggers;
    the window of PROGRESS_MEDIAN_ITEMS is written in preferences/sql/rater_progress_v1.sql
    too) and leaves out the corrections count.
    """
    done = Assignment.objects.filter(project=project, rater=user, status=AssignmentStatus.DONE)
    newest = done.order_by("-submitted_at", "-id").values_list("reserved_at", "submitted_at")
    seconds = [(s - r).total_seconds() for r, s in newest[:PROGRESS_MEDIAN_ITEMS]]
    return progress_dict(
        items_done=done.count(),
        median=statistics.median(seconds) if seconds else None,
        corrections=CorrectionReview.objects.filter(
            alt_text__post__project=project, rater=user
        ).count()
        if with_corrections
        else None,
    )


def progress_dict(*, items_done: int, median: float | None, corrections: int | None) -> dict:
    return {
        "items_done": items_done,
        "corrections": corrections,
        "median_seconds": round(median, 1) if median is not None else None,
        "median_of": PROGRESS_MEDIAN_ITEMS,
    }


def project_dashboard(*, project: Project) -> dict:
    """Items done per facet, percent agreement per facet, and each rater's left-choice rate."""
    facets = list(Facet.objects.filter(project=project, is_active=True))
    rows = list(
        Judgement.objects.filter(pair__post__project=project, kind=JudgementKind.HUMAN).values_list(
            "pair_id", "facet_id", "rater_user__username", "choice", "shown_order"
        )
    )
    by_item: dict[tuple[int, int], list[str]] = defaultdict(list)
    left: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # username -> [left, A-or-B]
    for pair_id, facet_id, username, choice, shown in rows:
        by_item[(pair_id, facet_id)].append(choice)
        if choice in (Choice.A, Choice.B):
            shown_left = Choice.A if shown == ShownOrder.AB else Choice.B
            left[username][0] += choice == shown_left
            left[username][1] += 1
    facet_rows = []
    for facet in facets:
        items = [c for (p, f), c in by_item.items() if f == facet.id]
        agree = total = 0
        for choices in items:
            for x, y in combinations(choices, 2):
                total += 1
                agree += x == y
        facet_rows.append(
            {
                "facet": facet,
                "judgements": sum(len(c) for c in items),
                "items_done": sum(1 for c in items if len(c) >= project.overlap),
                "agreement": round(100 * agree / total, 1) if total else None,
                "compared": total,
            }
        )
    raters = [
        {
            "username": name,
            "decisive": n,
            "left_rate": round(100 * k / n, 1) if n else None,
        }
        for name, (k, n) in sorted(left.items())
    ]
    pairs = CandidatePair.objects.filter(post__project=project).count()
    return {"facets": facet_rows, "raters": raters, "pairs": pairs}


def pair_votes_by_rater(*, pair: CandidatePair, facets: list[Facet]) -> list[dict]:
    """Who voted what on a pair, one row per rater (human raters first, then LLM labelers):
    {"name", "kind", "choices": [Choice label per facet in `facets` order, or None],
    "rationale"} — what a reviewer weighs before adjudicating."""
    rows: dict[tuple, dict] = {}
    judgements = (
        Judgement.objects.filter(
            pair=pair, kind__in=[JudgementKind.HUMAN, JudgementKind.LLM], facet__in=facets
        )
        .select_related("rater_user", "rater_llm")
        .order_by("created_at", "id")
    )
    for j in judgements:
        key = ("llm", j.rater_llm_id) if j.rater_llm_id else ("human", j.rater_user_id)
        if key not in rows:
            name = j.rater_user.get_username() if j.rater_user_id else str(j.rater_llm)
            rows[key] = {"name": name, "kind": key[0], "by_facet": {}, "rationales": []}
        rows[key]["by_facet"][j.facet_id] = Choice(j.choice).label
        if j.rationale and j.rationale not in rows[key]["rationales"]:
            rows[key]["rationales"].append(j.rationale)
    return [
        {
            "name": row["name"],
            "kind": row["kind"],
            "choices": [row["by_facet"].get(f.pk) for f in facets],
            "rationale": " / ".join(row["rationales"]),
        }
        for key, row in sorted(rows.items(), key=lambda kv: (kv[0][0] == "llm", kv[1]["name"]))
    ]


def review_next_pair_id(*, queue: list[dict], after: int) -> int | None:
    """The disputed pair after `after` in the review queue, wrapping round; None when empty."""
    ids = [row["pair_id"] for row in queue if row["pair_id"] != after]
    later = [i for i in ids if i > after]
    return (later or ids or [None])[0]
