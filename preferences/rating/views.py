"""The judge screen and its queue: next, submit, prefetch, edit, skip, undo, status, history
and the rater's keys.

Forms post normally and redirect, so every page works without JavaScript; static/js/keys.js
adds the keyboard map and the "hear it" speech on top.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.selectors import project_get_for_user, project_role
from core.auth import request_user
from core.errors import ApplicationError, NotFound
from core.reverse import path_for

from ..consensus.selectors import consensus_policy_get
from ..flash import CHOICE_ROWS, flash_text, redirect_done
from ..models import Assignment, AssignmentStatus, Facet
from ..selectors import rater_progress
from .history import (
    assignment_answers,
    assignment_edit,
    edit_deadline,
    edit_open,
    rater_done_today,
    rater_history,
    rater_remaining,
)
from .keyprefs import DEFAULT_KEYS, rater_settings_get, rater_settings_save
from .page import JudgePage, judge_page, rater_state
from .queue import (
    assignment_activate,
    assignment_current,
    assignment_last_undoable,
    assignment_next,
    assignment_prefetch,
    assignment_skip,
    assignment_submit,
    assignment_undo,
    displayed_to_stored,
)


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
            "flash": flash_text(request),
        },
    )


def _judge_context(
    request, page: JudgePage, *, errors=None, answers=None, done=None, mode="judge"
) -> dict:
    assignment = page.assignment
    pair = assignment.pair
    left, right = (
        (pair.alt_a, pair.alt_b) if assignment.shown_order == "AB" else (pair.alt_b, pair.alt_a)
    )
    answers = answers or {}
    # LLM verdicts (present only when the project's blind-first rule allows them for this rater
    # now) shown in the sides as displayed: the A/B swap maps both ways.
    shown = {
        key: sorted(
            Counter(
                displayed_to_stored(choice=c, shown_order=assignment.shown_order) for c in choices
            ).items()
        )
        for key, choices in page.llm.items()
    }
    rows = [
        {"facet": f, "answer": answers.get(f.key, ""), "llm": shown.get(f.key)} for f in page.facets
    ]
    project = assignment.project
    settings = rater_settings_get(request=request)
    return {
        "project": project,
        "assignment": assignment,
        "post": pair.post,
        "candidates": [("A", left), ("B", right)],
        "open_guidelines": False,
        "rows": rows,
        # Blank rows (no answers, no verdicts: nearly every item) are the same HTML for every
        # item of a project: rendered once per facet set instead of ~200 template nodes a page.
        "rows_html": None
        if answers or shown
        else _blank_rows_html(
            tuple((f.id, f.key, f.label, f.question, f.required) for f in page.facets)
        ),
        "choices": CHOICE_ROWS,
        "errors": errors or [],
        "rationale": answers.get("_rationale", ""),
        "undo": {"id": page.undo_id} if page.undo_id else None,
        "progress": page.progress,
        # "Item n": the rater's n-th item in the project (this one included).
        "position": (page.progress.get("items_done") or 0) + (mode != "edit"),
        "flash": flash_text(request, done),
        "mode": mode,
        "rater_settings": settings,
        "keys_json": json.dumps(settings["keys"], separators=(",", ":")),
        "keymap_html": _keymap_html(settings["enabled"], tuple(settings["keys"].items())),
        "status_url": path_for("rate:status", kwargs={"project_id": project.id}),
        "history_url": path_for("rate:history", kwargs={"project_id": project.id}),
    }


@lru_cache(maxsize=256)
def _keymap_html(enabled: bool, keys: tuple[tuple[str, str], ...]) -> str:
    # The key list is the same on every item for a rater: rendered once per key map.
    return render_to_string(
        "preferences/_keymap.html", {"rater_settings": {"enabled": enabled, "keys": dict(keys)}}
    )


@lru_cache(maxsize=256)
def _blank_rows_html(facets: tuple[tuple[int, str, str, str, bool], ...]) -> str:
    rows = [
        {"facet": Facet(id=i, key=k, label=lb, question=q, required=r)} for i, k, lb, q, r in facets
    ]
    return render_to_string("preferences/_choice_rows.html", {"rows": rows, "choices": CHOICE_ROWS})


def _judge_page_for(request, assignment: Assignment, *, policy=None) -> JudgePage:
    return judge_page(
        assignment_id=assignment.pk,
        project=assignment.project,
        user=request.user,
        llm_visible=getattr(assignment, "llm_visible", None),
        policy=policy,
    )


@require_GET
@login_required
def rate_next(request, project_id: int):
    """Next: the rater's live reservation, or a newly reserved pair (idempotent while reserved).

    The rating hot path: on PostgreSQL, after the user's row, two statements: the rater's
    state, then either the live reservation's page or a new reservation with its page."""
    user = request_user(request)
    state = rater_state(user=user, project_id=project_id)
    project = state.project
    if not request.session.get(_guidelines_seen_key(project.id)) and not state.started:
        return redirect("rate:home", project_id=project.id)
    assignment = assignment_next(project=project, user=user, state=state, with_page=True)
    if assignment is None:
        return render(
            request,
            "preferences/queue_empty.html",
            {
                "project": project,
                "progress": rater_progress(project=project, user=user),
                "undo": assignment_last_undoable(project=project, user=user),
                "flash": flash_text(request),
            },
        )
    page = getattr(assignment, "page", None) or _judge_page_for(
        request, assignment, policy=state.policy
    )
    return render(request, "preferences/judge.html", _judge_context(request, page))


def _own_assignment(request, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("project")
        .filter(pk=assignment_id, rater=request.user)
        .first()
    )
    if assignment is None or project_role(project=assignment.project, user=request.user) is None:
        raise NotFound("No such item in your queue.")
    return assignment


@require_GET
@login_required
def rate_item(request, assignment_id: int):
    """The rater's reserved item, or a submitted one reopened from their history while it can
    still be edited (edit mode: its answers filled in, saved with rate_edit)."""
    assignment = _own_assignment(request, assignment_id)
    policy = consensus_policy_get(project=assignment.project)
    if assignment.status == AssignmentStatus.DONE and edit_open(assignment):
        page = _judge_page_for(request, assignment, policy=policy)
        context = _judge_context(
            request, page, answers=assignment_answers(assignment=assignment), mode="edit"
        )
        context["edit_until"] = edit_deadline(assignment)
        return render(request, "preferences/judge.html", context)
    if assignment.status != AssignmentStatus.RESERVED:
        return redirect("rate:next", project_id=assignment.project_id)
    page = _judge_page_for(request, assignment, policy=policy)
    return render(request, "preferences/judge.html", _judge_context(request, page))


def _posted_answers(request) -> tuple[dict, str]:
    """The judge form's answers ({facet key: choice}) and rationale."""
    answers = {k[len("facet-") :]: v for k, v in request.POST.items() if k.startswith("facet-")}
    return answers, request.POST.get("rationale", "")


def _form_again(request, assignment_id: int, exc, answers, rationale, **extra) -> dict:
    """The item's page context with the refused answers, so nothing typed or picked is lost."""
    assignment = _own_assignment(request, assignment_id)
    page = _judge_page_for(
        request, assignment, policy=consensus_policy_get(project=assignment.project)
    )
    return _judge_context(
        request, page, errors=[exc.message], answers={**answers, "_rationale": rationale}, **extra
    )


@require_http_methods(["GET", "POST"])
@login_required
def rate_submit(request, assignment_id: int):
    """Store the answers, then Next. A plain form post redirects to Next; an htmx post gets the
    next item's fragment in the same response (no page load). A GET (a sign-in redirect back
    to this address after the session ran out) shows the item again."""
    if request.method == "GET":
        return redirect("rate:item", assignment_id=assignment_id)
    answers, rationale = _posted_answers(request)
    try:
        assignment, created = assignment_submit(
            assignment_id=assignment_id,
            user=request_user(request),
            answers=answers,
            rationale=rationale,
        )
    except ApplicationError as exc:
        if exc.status_code != 400:
            raise
        context = _form_again(request, assignment_id, exc, answers, rationale)
        template = "preferences/judge.html#item" if request.htmx else "preferences/judge.html"
        return _vary(render(request, template, context, status=400))
    done = "saved" if created else "again"
    prefetched = request.headers.get("X-Next-Item", "")
    if prefetched.isdigit():
        # The screen already shows the prefetched next item (rate_prefetch): start its clock,
        # and tell the page what `u` now undoes.
        live = assignment_activate(assignment_id=int(prefetched), user=request.user)
        response = HttpResponse(status=204)
        response["X-Undo-Url"] = path_for("rate:undo", kwargs={"assignment_id": assignment.id})
        response["X-Next-Item-Live"] = "1" if live else "0"
        response["X-Outcome"] = flash_text(request, done)
        return response
    if request.htmx:
        return _vary(_next_fragment(request, assignment.project_id, done))
    return redirect_done("rate:next", done, project_id=assignment.project_id)


@require_GET
@login_required
def rate_prefetch(request, assignment_id: int):
    """The item after this one, reserved now and rendered for the screen to swap in the moment
    the rater submits this one (no round trip then); 204 when nothing else is open."""
    current = _own_assignment(request, assignment_id)
    policy = consensus_policy_get(project=current.project)
    assignment = assignment_prefetch(
        project=current.project, user=request.user, policy=policy, current_id=current.id
    )
    if assignment is None:
        return HttpResponse(status=204)
    page = _judge_page_for(request, assignment, policy=policy)
    context = _judge_context(request, page, done="saved")
    context["position"] += 1  # shown once the current item is submitted
    context["undo"] = None  # set by the page when the submit returns (X-Undo-Url)
    response = render(request, "preferences/judge.html#item", context)
    response["X-Item-Url"] = path_for("rate:item", kwargs={"assignment_id": assignment.id})
    response["Cache-Control"] = "no-store"
    return response


def _vary(response):
    response["Vary"] = "HX-Request"
    return response


def _next_fragment(request, project_id: int, done: str) -> HttpResponse:
    """The next item as the fragment htmx swaps in, its address pushed to the history; or,
    when the queue is empty, a redirect htmx follows with a page load."""
    user = request_user(request)
    state = rater_state(user=user, project_id=project_id)
    assignment = assignment_next(project=state.project, user=user, state=state, with_page=True)
    if assignment is None:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = (
            f"{path_for('rate:next', kwargs={'project_id': project_id})}?done={done}"
        )
        return response
    page = getattr(assignment, "page", None) or _judge_page_for(
        request, assignment, policy=state.policy
    )
    response = render(
        request, "preferences/judge.html#item", _judge_context(request, page, done=done)
    )
    response["HX-Push-Url"] = path_for("rate:item", kwargs={"assignment_id": assignment.id})
    return response


@require_POST
@login_required
def rate_edit(request, assignment_id: int):
    """Save changed answers on a submitted item reopened from the history."""
    answers, rationale = _posted_answers(request)
    try:
        assignment_edit(
            assignment_id=assignment_id, user=request.user, answers=answers, rationale=rationale
        )
    except ApplicationError as exc:
        if exc.status_code != 400:
            raise
        context = _form_again(request, assignment_id, exc, answers, rationale, mode="edit")
        return render(request, "preferences/judge.html", context, status=400)
    assignment = _own_assignment(request, assignment_id)
    return redirect_done("rate:next", "edited", project_id=assignment.project_id)


def _status_context(request, project) -> dict:
    settings = rater_settings_get(request=request)
    return {
        "project": project,
        "remaining": rater_remaining(project=project, user=request.user),
        "today": rater_done_today(project=project, user=request.user),
        "goal": settings.get("goal"),
        "history": rater_history(project=project, user=request.user),
        "progress": rater_progress(project=project, user=request.user, with_corrections=False),
    }


@require_GET
@login_required
def rate_status(request, project_id: int):
    """htmx: the rater's position and recent items (loaded after the item, off its path)."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    return render(request, "preferences/_status.html", _status_context(request, project))


@require_GET
@login_required
def rate_history(request, project_id: int):
    """The same as a page of its own (without JavaScript)."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    return render(request, "preferences/history.html", _status_context(request, project))


@require_http_methods(["GET", "POST"])
@login_required
def rate_keys(request):
    """The rater's keyboard shortcuts (on/off, remapped) and daily goal."""
    errors = []
    settings = rater_settings_get(request=request)
    if request.method == "POST":
        keymap = {a: request.POST.get(f"key-{a}", "") for a in DEFAULT_KEYS}
        goal_raw = request.POST.get("daily_goal", "").strip()
        try:
            goal = int(goal_raw) if goal_raw else None
        except ValueError:
            errors.append("The daily goal is a whole number of items.")
        else:
            try:
                rater_settings_save(
                    request=request,
                    enabled=request.POST.get("enabled") == "on",
                    keymap=keymap,
                    daily_goal=goal,
                )
            except ApplicationError as exc:
                errors.append(exc.message)
            else:
                return redirect(f"{path_for('rate:keys')}?done=keys")
        settings = {
            "enabled": request.POST.get("enabled") == "on",
            "keys": keymap,
            "goal": goal_raw,
        }
    rows = [(a, settings["keys"].get(a, d), d, what) for a, (d, what) in DEFAULT_KEYS.items()]
    return render(
        request,
        "preferences/keys.html",
        {
            "settings": settings,
            "rows": rows,
            "errors": errors,
            "flash": "Saved your keyboard settings." if request.GET.get("done") == "keys" else "",
        },
        status=400 if errors else 200,
    )


@require_POST
@login_required
def rate_skip(request, assignment_id: int):
    assignment = assignment_skip(assignment_id=assignment_id, user=request.user)
    return redirect_done("rate:next", "skipped", project_id=assignment.project_id)


@require_POST
@login_required
def rate_undo(request, assignment_id: int):
    assignment = assignment_undo(assignment_id=assignment_id, user=request.user)
    return redirect_done("rate:item", "undone", assignment_id=assignment.id)


# --- Review -----------------------------------------------------------------------------
