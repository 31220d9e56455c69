"""Rater pages: the judge screen and its queue (next, submit, skip, undo), review, dashboard.

Forms post normally and redirect, so every page works without JavaScript; static/js/keys.js
adds the keyboard map and the "hear it" speech on top.
"""

from __future__ import annotations

from collections import Counter

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.models import Role
from annotate.selectors import project_get_for_user, project_role
from core.errors import ApplicationError, NotFound

from .models import Assignment, AssignmentStatus, CandidatePair, Choice, Facet, JudgementKind
from .queue import (
    assignment_current,
    assignment_last_undoable,
    assignment_next,
    assignment_skip,
    assignment_submit,
    assignment_undo,
    displayed_to_stored,
    llm_verdicts_for_rater,
)
from .selectors import (
    judgement_votes,
    project_dashboard,
    project_with_role_for_user,
    rater_progress,
    review_queue,
)
from .services import judgement_record

CHOICE_ROWS = [
    (Choice.A, "A is better", "1"),
    (Choice.B, "B is better", "2"),
    (Choice.TIE, "Tie", "3"),
    (Choice.BOTH_BAD, "Both bad", "4"),
]


# Outcomes travel as a short code in the redirect URL, not in the session: no session write per
# submit, and the message is announced on the page the rater lands on.
FLASH = {
    "saved": "Saved your answers for the previous item. Press u to undo.",
    "again": "That item was already saved; nothing was stored twice.",
    "skipped": "Skipped; the item went back to the queue.",
    "undone": "Undone: your answers for this item were removed. Answer again.",
    "adjudicated": "Adjudication saved.",
}


def _flash(request) -> str:
    return FLASH.get(request.GET.get("done", ""), "")


def _to(name: str, done: str, **kwargs):
    return redirect(f"{reverse(name, kwargs=kwargs)}?done={done}")


def _guidelines_seen_key(project_id: int) -> str:
    return f"guidelines_seen_{project_id}"


@require_GET
@login_required
def rate_home(request, project_id: int):
    """Guidelines first, then the rater's progress and the way into the queue."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    request.session[_guidelines_seen_key(project.id)] = True
    return render(
        request,
        "preferences/rate_home.html",
        {
            "project": project,
            "role": project_role(project=project, user=request.user),
            "progress": rater_progress(project=project, user=request.user),
            "current": assignment_current(project=project, user=request.user),
            "flash": _flash(request),
        },
    )


def _judge_context(request, assignment: Assignment, *, errors=None, answers=None) -> dict:
    pair = assignment.pair
    left, right = (
        (pair.alt_a, pair.alt_b) if assignment.shown_order == "AB" else (pair.alt_b, pair.alt_a)
    )
    facets = list(Facet.objects.filter(project=assignment.project, is_active=True))
    answers = answers or {}
    # Blind-first: LLM verdicts appear only when the project allows it for this rater now,
    # shown in the sides as displayed (the A/B swap maps both ways). Next already knows the
    # policy and, for a pair it has just reserved, the visibility.
    llm = llm_verdicts_for_rater(
        pair=pair,
        user=request.user,
        project=assignment.project,
        policy=getattr(assignment, "policy", None),
        visible=getattr(assignment, "llm_visible", None),
    )
    shown = {
        key: sorted(
            Counter(
                displayed_to_stored(choice=c, shown_order=assignment.shown_order) for c in choices
            ).items()
        )
        for key, choices in llm.items()
    }
    return {
        "project": assignment.project,
        "assignment": assignment,
        "post": pair.post,
        "candidates": [("A", left), ("B", right)],
        "rows": [
            {"facet": f, "answer": answers.get(f.key, ""), "llm": shown.get(f.key)} for f in facets
        ],
        "choices": CHOICE_ROWS,
        "errors": errors or [],
        "rationale": (answers or {}).get("_rationale", ""),
        "undo": assignment_last_undoable(project=assignment.project, user=request.user),
        "progress": rater_progress(
            project=assignment.project, user=request.user, with_corrections=False
        ),
        "flash": _flash(request),
    }


@require_GET
@login_required
def rate_next(request, project_id: int):
    """Next: the rater's live reservation, or a newly reserved pair (idempotent while reserved)."""
    project, role = project_with_role_for_user(user=request.user, project_id=project_id)
    if (
        not request.session.get(_guidelines_seen_key(project.id))
        and not Assignment.objects.filter(project=project, rater=request.user).exists()
    ):
        return redirect("rate:home", project_id=project.id)
    assignment = assignment_next(project=project, user=request.user, role=role)
    if assignment is None:
        return render(
            request,
            "preferences/queue_empty.html",
            {
                "project": project,
                "progress": rater_progress(project=project, user=request.user),
                "undo": assignment_last_undoable(project=project, user=request.user),
                "flash": _flash(request),
            },
        )
    return render(request, "preferences/judge.html", _judge_context(request, assignment))


def _own_assignment(request, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related(
            "project", "pair__post__image", "pair__alt_a", "pair__alt_b"
        )
        .filter(pk=assignment_id, rater=request.user)
        .first()
    )
    if assignment is None or project_role(project=assignment.project, user=request.user) is None:
        raise NotFound("No such item in your queue.")
    return assignment


@require_GET
@login_required
def rate_item(request, assignment_id: int):
    assignment = _own_assignment(request, assignment_id)
    if assignment.status != AssignmentStatus.RESERVED:
        return redirect("rate:next", project_id=assignment.project_id)
    return render(request, "preferences/judge.html", _judge_context(request, assignment))


@require_POST
@login_required
def rate_submit(request, assignment_id: int):
    answers = {k[len("facet-") :]: v for k, v in request.POST.items() if k.startswith("facet-")}
    rationale = request.POST.get("rationale", "")
    try:
        assignment, created = assignment_submit(
            assignment_id=assignment_id, user=request.user, answers=answers, rationale=rationale
        )
    except ApplicationError as exc:
        if exc.status_code != 400:
            raise
        # Re-show the form with what the rater chose, so nothing typed or picked is lost.
        assignment = _own_assignment(request, assignment_id)
        context = _judge_context(
            request, assignment, errors=[exc.message], answers={**answers, "_rationale": rationale}
        )
        return render(request, "preferences/judge.html", context, status=400)
    return _to("rate:next", "saved" if created else "again", project_id=assignment.project_id)


@require_POST
@login_required
def rate_skip(request, assignment_id: int):
    assignment = assignment_skip(assignment_id=assignment_id, user=request.user)
    return _to("rate:next", "skipped", project_id=assignment.project_id)


@require_POST
@login_required
def rate_undo(request, assignment_id: int):
    assignment = assignment_undo(assignment_id=assignment_id, user=request.user)
    return _to("rate:item", "undone", assignment_id=assignment.id)


# --- Review -----------------------------------------------------------------------------


@require_GET
@login_required
def review_list(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
    queue = review_queue(project=project)
    pairs = CandidatePair.objects.in_bulk([row["pair_id"] for row in queue])
    facets = Facet.objects.in_bulk([f for row in queue for f in row["facets"]])
    items = [
        {"pair": pairs[row["pair_id"]], "facets": [facets[f] for f in row["facets"]]}
        for row in queue
    ]
    return render(
        request,
        "preferences/review_list.html",
        {"project": project, "items": items, "flash": _flash(request)},
    )


@require_http_methods(["GET", "POST"])
@login_required
def review_pair(request, project_id: int, pair_id: int):
    """Adjudicate one disputed pair: the reviewer's answer is its own judgement kind and wins."""
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
    pair = get_object_or_404(
        CandidatePair.objects.select_related("post__image", "alt_a", "alt_b"),
        pk=pair_id,
        post__project=project,
    )
    queue = {row["pair_id"]: row["facets"] for row in review_queue(project=project)}
    facets = list(Facet.objects.filter(pk__in=queue.get(pair.id, [])))
    errors = []
    if request.method == "POST":
        answers = {f.key: request.POST.get(f"facet-{f.key}", "") for f in facets}
        missing = [f.label for f in facets if answers[f.key] not in Choice.values]
        if missing:
            errors.append("Choose an answer for: " + ", ".join(missing) + ".")
        else:
            for facet in facets:
                judgement_record(
                    pair=pair,
                    facet=facet,
                    user=request.user,
                    choice=answers[facet.key],
                    kind=JudgementKind.ADJUDICATION,
                    rationale=request.POST.get("rationale", "").strip(),
                )
            return _to("rate:review", "adjudicated", project_id=project.id)
    votes = judgement_votes(pair=pair)
    rows = [
        {
            "facet": f,
            "human": sorted(votes[f.id]["human"].items()),
            "llm": sorted(votes[f.id]["llm"].items()),
            "answer": request.POST.get(f"facet-{f.key}", ""),
        }
        for f in facets
    ]
    return render(
        request,
        "preferences/review_pair.html",
        {
            "project": project,
            "pair": pair,
            "post": pair.post,
            "candidates": [("A", pair.alt_a), ("B", pair.alt_b)],
            "rows": rows,
            "choices": CHOICE_ROWS,
            "errors": errors,
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
