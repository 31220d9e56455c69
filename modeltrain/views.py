"""Pages: a project's training rounds (admins start and cancel them), each with live progress,
a server-side SVG loss/margin curve, a score comparison table and links to what it produced."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from annotate.models import Role
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError

from . import selectors, services
from .human_eval import base_player, human_judgement_for_project, round_player
from .models import ACTIVE_STATUSES, Method, RoundStatus, Strategy


def _list_page(request, project, status=200, form=None):
    from modeltrain.mcmdpo.config import PARADIGMS
    from modeltrain.mcmdpo.negatives import ImageNegative
    from snapshots.models import Snapshot

    rounds = list(selectors.round_list_for_project(project_id=project.pk)[:50])
    human = human_judgement_for_project(project_id=project.pk)
    facet = _facet_param(request, human, overall=selectors.overall_facet_key(project_id=project.pk))
    for r in rounds:
        r.rouge_l = r.scores.get("ROUGE-L")  # the key's hyphen cannot be read in a template
        r.human = human.rate(round_player(r), facet) if facet else None
    return render(
        request,
        "modeltrain/list.html",
        {
            "project": project,
            "rounds": rounds,
            "paradigms": list(PARADIGMS),
            "negatives": [n.value for n in ImageNegative],
            "snapshots": Snapshot.objects.filter(project=project, status="done"),
            "done_rounds": selectors.round_list_for_project(project_id=project.pk).filter(
                status="done"
            ),
            "methods": Method.choices,
            "strategies": Strategy.choices,
            "form": form or {},
            "facets": human.facets,
            "facet": facet,
            "facet_label": dict(human.facets).get(facet, ""),
            "ranking": human.ranking_rows(facet) if facet else [],
        },
        status=status,
    )


def _facet_param(request, human, *, overall: str) -> str:
    """The facet the list ranks by: ?facet=KEY when it is one of the project's, else the
    overall-role facet, else the first."""
    keys = [key for key, _ in human.facets]
    wanted = request.GET.get("facet", "")
    if wanted in keys:
        return wanted
    return overall if overall in keys else (keys[0] if keys else "")


@require_GET
@login_required
def round_list(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    return _list_page(request, project)


@require_POST
@login_required
def round_new(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    data = request.POST
    try:
        try:
            hyper = json.loads(data.get("hyperparameters") or "{}")
        except ValueError as exc:
            raise ApplicationError(f"Hyper-parameters must be a JSON object ({exc}).") from None
        if not isinstance(hyper, dict):
            raise ApplicationError("Hyper-parameters must be a JSON object.")
        try:
            options = json.loads(data.get("options") or "{}")
        except ValueError as exc:
            raise ApplicationError(f"Round options must be a JSON object ({exc}).") from None
        if not isinstance(options, dict):
            raise ApplicationError("Round options must be a JSON object.")
        if data.get("llm_prelabel"):
            options["llm_prelabel"] = True
        snapshot_id = int(data.get("snapshot") or 0)
        from_round = int(data["from_round"]) if data.get("from_round") else None
        processes = int(data["processes"]) if (data.get("processes") or "").strip() else None
        round_ = services.round_start(
            user=request.user,
            snapshot_id=snapshot_id,
            method=data.get("method", ""),
            base_model="" if from_round else data.get("base_model", "").strip(),
            from_round_id=from_round,
            paradigm=data.get("paradigm") or "both",
            negative_type=data.get("negative_type") or "noise",
            hyperparameters=hyper,
            options=options,
            processes=processes,
            strategy=data.get("strategy") or "",
        )
    except (ValueError, ApplicationError) as exc:
        message = (
            exc.message
            if isinstance(exc, ApplicationError)
            else "Choose a snapshot; processes must be a whole number."
        )
        messages.error(request, message)
        return _list_page(request, project, status=getattr(exc, "status_code", 400), form=data)
    if getattr(round_, "queue_down", False):
        from core.jobs import QUEUE_DOWN_MESSAGE

        messages.warning(request, f"Round {round_.pk}: {QUEUE_DOWN_MESSAGE}")
    else:
        round_.refresh_from_db()  # a runner thread may have moved it on already
        level, text = _started_message(round_)
        messages.add_message(request, level, text)
    return redirect("rounds:detail", round_id=round_.pk)


def _started_message(round_) -> tuple[int, str]:
    """What to tell the admin who just started a round, from the state it is in now."""
    status = round_.status
    if status == RoundStatus.DONE:
        return messages.SUCCESS, f"Round {round_.pk} started and finished."
    if status == RoundStatus.FAILED:
        return messages.ERROR, f"Round {round_.pk} started and failed; the error is below."
    if status == RoundStatus.CANCELLED:
        return messages.WARNING, f"Round {round_.pk} was cancelled."
    if status == RoundStatus.QUEUED:
        return (
            messages.SUCCESS,
            f"Round {round_.pk} queued: it starts when a gpu worker is free; this page follows it.",
        )
    label = round_.get_status_display().lower()
    if status in ACTIVE_STATUSES:
        return messages.SUCCESS, f"Round {round_.pk} started ({label}); this page follows it."
    return messages.SUCCESS, f"Round {round_.pk}: {label}; this page follows it."


@require_GET
@login_required
@vary_on_headers("HX-Request")
def round_detail(request, round_id: int):
    round_ = selectors.round_get_for_user(user=request.user, round_id=round_id, min_role=Role.ADMIN)
    done = round_.status == RoundStatus.DONE  # only a done round has candidates to judge
    human = human_judgement_for_project(project_id=round_.project_id) if done else None
    base = base_player(round_)
    context = {
        "r": round_,
        "project": round_.project,
        "curve": selectors.round_curve_svg(round_=round_),
        "comparison": selectors.round_comparison(round_=round_) if round_.scores else [],
        "previous": selectors.round_previous(round_=round_),
        "candidates": selectors.round_candidates(round_=round_)[:100],
        "held_back": selectors.round_held_back(round_=round_),
        "held_back_outputs": selectors.round_held_back_outputs(round_=round_)[:100],
        "human_rows": human.rows_for(round_player(round_)) if human else [],
        "base_rows": human.rows_for(base) if human and base else [],
        "launch_line": _launch_line(round_),
    }
    template = "modeltrain/detail.html"
    if request.htmx:
        template += "#status"
    return render(request, template, context)


def _launch_line(round_) -> str:
    """The 2-machine launch line (a template for clusters; round_launch_command fills in more)."""
    out = round_.output_dir or str(services.rounds_root() / f"round-{round_.pk}")
    try:
        return selectors.round_launch_line(
            round_=round_,
            nodes=2,
            snapshot_dir=str(services.snapshot_folder(round_.snapshot)),
            output_dir=out,
        )
    except ValueError:
        return ""


@require_POST
@login_required
def round_cancel_view(request, round_id: int):
    try:
        services.round_cancel(user=request.user, round_id=round_id)
        messages.success(request, f"Round {round_id}: cancel requested.")
    except ApplicationError as exc:
        if exc.status_code in (403, 404):
            raise
        messages.error(request, exc.message)
    return redirect("rounds:detail", round_id=round_id)


@require_GET
@login_required
def round_compare(request, project_id: int):
    """Two writers (rounds or their base models) side by side on the posts both wrote for."""
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    choices = selectors.writer_choices(project_id=project.pk)
    values = [value for value, _ in choices]
    left = request.GET.get("a") or (values[0] if values else "")
    right = request.GET.get("b") or (values[1] if len(values) > 1 else left)
    status, rows, error = 200, [], ""
    parsed = (selectors.writer_parse(left), selectors.writer_parse(right))
    if left not in values or right not in values or None in parsed:
        status, error = 400, "Choose two rounds of this project that wrote alt-text."
        if not values:
            status, error = 200, "No round of this project has written alt-text yet."
    else:
        rows = selectors.outputs_side_by_side(
            project_id=project.pk, left=parsed[0], right=parsed[1]
        )
    labels = dict(choices)
    return render(
        request,
        "modeltrain/compare.html",
        {
            "project": project,
            "choices": choices,
            "a": left,
            "b": right,
            "a_label": labels.get(left, ""),
            "b_label": labels.get(right, ""),
            "rows": rows,
            "error": error,
        },
        status=status,
    )
