"""Reviewer and admin pages: the review queue, adjudication of one pair, the dashboard.

The rater's own pages (the judge screen and its queue) are in preferences.rating.views.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from annotate.models import Role
from annotate.selectors import project_get_for_user

from .consensus.services import adjudication_record
from .flash import CHOICE_ROWS, flash_text, redirect_done
from .models import CandidatePair, Choice, Facet
from .selectors import pair_votes_by_rater, project_dashboard, review_next_pair_id, review_queue

REVIEW_PAGE_SIZE = 50


@require_GET
@login_required
def review_list(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
    queue = review_queue(project=project)
    page = Paginator(queue, REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    pairs = CandidatePair.objects.select_related("post").in_bulk([r["pair_id"] for r in rows])
    facets = Facet.objects.in_bulk([f for row in rows for f in row["facets"]])
    items = [
        {"pair": pairs[row["pair_id"]], "facets": [facets[f] for f in row["facets"]]}
        for row in rows
    ]
    return render(
        request,
        "preferences/review_list.html",
        {
            "project": project,
            "items": items,
            "page": page,
            "first_id": queue[0]["pair_id"] if queue else None,
            "flash": flash_text(request),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def review_pair(request, project_id: int, pair_id: int):
    """Adjudicate one disputed pair: the reviewer's answer is its own judgement kind and wins.

    The page shows every vote with the rater's name and rationale; a saved ruling moves on to
    the next disputed pair (the queue wraps round), or back to the list when none is left.
    """
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
    pair = get_object_or_404(
        CandidatePair.objects.select_related("post__image", "alt_a", "alt_b"),
        pk=pair_id,
        post__project=project,
    )
    queue = review_queue(project=project)
    disputed = {row["pair_id"]: row["facets"] for row in queue}
    facets = list(Facet.objects.filter(pk__in=disputed.get(pair.id, [])))
    next_id = review_next_pair_id(queue=queue, after=pair.id)
    errors = []
    if request.method == "POST":
        answers = {f.key: request.POST.get(f"facet-{f.key}", "") for f in facets}
        missing = [f.label for f in facets if answers[f.key] not in Choice.values]
        if missing:
            errors.append("Choose an answer for: " + ", ".join(missing) + ".")
        else:
            adjudication_record(
                pair=pair,
                user=request.user,
                answers={facet: answers[facet.key] for facet in facets},
                rationale=request.POST.get("rationale", "").strip(),
            )
            if next_id is not None:
                return redirect_done(
                    "rate:review_pair", "adjudicated", project_id=project.id, pair_id=next_id
                )
            return redirect_done("rate:review", "adjudicated", project_id=project.id)
    rows = [{"facet": f, "answer": request.POST.get(f"facet-{f.key}", "")} for f in facets]
    return render(
        request,
        "preferences/review_pair.html",
        {
            "project": project,
            "pair": pair,
            "post": pair.post,
            "candidates": [("A", pair.alt_a), ("B", pair.alt_b)],
            "rows": rows,
            "facets": facets,
            "votes": pair_votes_by_rater(pair=pair, facets=facets),
            "choices": CHOICE_ROWS,
            "errors": errors,
            "flash": flash_text(request),
            "next_id": next_id,
            "left": len(queue),
        },
        status=400 if errors else 200,
    )


@require_GET
@login_required
def dashboard(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    return render(
        request,
        "preferences/dashboard.html",
        {
            "project": project,
            "data": project_dashboard(project=project),
            "home": reverse("annotate:home"),
        },
    )
