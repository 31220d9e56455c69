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
from .models import Method, Strategy


def _list_page(request, project, status=200, form=None):
    from modeltrain.mcmdpo.config import PARADIGMS
    from modeltrain.mcmdpo.negatives import ImageNegative
    from snapshots.models import Snapshot

    rounds = list(selectors.round_list_for_project(project_id=project.pk)[:50])
    for r in rounds:
        r.rouge_l = r.scores.get("ROUGE-L")  # the key's hyphen cannot be read in a template
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
        },
        status=status,
    )


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
        messages.success(request, f"Round {round_.pk} queued.")
    return redirect("rounds:detail", round_id=round_.pk)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def round_detail(request, round_id: int):
    round_ = selectors.round_get_for_user(user=request.user, round_id=round_id, min_role=Role.ADMIN)
    context = {
        "r": round_,
        "project": round_.project,
        "curve": selectors.round_curve_svg(round_=round_),
        "comparison": selectors.round_comparison(round_=round_) if round_.scores else [],
        "previous": selectors.round_previous(round_=round_),
        "candidates": selectors.round_candidates(round_=round_)[:100],
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
