"""Admin page for blending: agreement (κ, α, percent), position flips, rater reliability and
gold accuracy, flagged consensus, and the project's blending settings."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Role
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError
from preferences.labelers.config import NOT_CONFIGURED, gemini_configured
from preferences.labelers.selectors import flip_rate_by_facet

from .models import GoldItem, Method
from .selectors import agreement_by_facet, consensus_list, rater_reliability_list
from .services import (
    consensus_policy_for,
    consensus_policy_update,
    consensus_recompute,
    gold_items_create,
)


@require_GET
@login_required
def consensus_dashboard(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    flips = {row["facet"].id: row for row in flip_rate_by_facet(project=project)}
    agreement = [
        dict(row, flip=flips.get(row["facet"].id)) for row in agreement_by_facet(project=project)
    ]
    flagged_only = request.GET.get("flagged") == "1"
    return render(
        request,
        "consensus/dashboard.html",
        {
            "project": project,
            "policy": consensus_policy_for(project=project),
            "methods": [(Method.WEIGHTED, "Weighted vote"), (Method.DAWID_SKENE, "Dawid–Skene")],
            "agreement": agreement,
            "raters": rater_reliability_list(project=project),
            "consensus": consensus_list(project=project, flagged_only=flagged_only)[:50],
            "flagged_only": flagged_only,
            "gold_count": GoldItem.objects.filter(pair__post__project=project).count(),
            "llm_configured": gemini_configured(),
            "not_configured": NOT_CONFIGURED,
        },
    )


def _float(request, name: str) -> float:
    try:
        return float(request.POST.get(name, ""))
    except ValueError:
        raise ApplicationError(f"{name.replace('_', ' ').capitalize()} must be a number.") from None


@require_POST
@login_required
def consensus_policy_save(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    try:
        fields = {
            name: _float(request, name)
            for name in (
                "weight_adjudication",
                "weight_human",
                "weight_llm",
                "review_threshold",
                "gold_rate",
            )
        }
        minimum = request.POST.get("gold_min_answers", "")
        if not minimum.isdigit():
            raise ApplicationError("Gold minimum answers must be a whole number.")
        with transaction.atomic():
            consensus_policy_update(
                project=project,
                method=request.POST.get("method", ""),
                blind_first=request.POST.get("blind_first") == "on",
                gold_downweight=request.POST.get("gold_downweight") == "on",
                gold_min_answers=int(minimum),
                **fields,
            )
            n = consensus_recompute(project=project)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Settings saved; {n} consensus labels recomputed.")
    return redirect("consensus:dashboard", project_id=project.pk)


@require_POST
@login_required
def consensus_refit(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    from .tasks import reliability_fit_task

    transaction.on_commit(lambda: reliability_fit_task.delay(project.pk))
    messages.success(request, "Refitting rater reliabilities (Dawid–Skene) in the background.")
    return redirect("consensus:dashboard", project_id=project.pk)


@require_POST
@login_required
def gold_create(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    count = request.POST.get("count", "20").strip()
    try:
        if not count.isdigit():
            raise ApplicationError("The number of gold items must be a whole number.")
        created = gold_items_create(project=project, limit=int(count))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(created)} gold items created.")
    return redirect("consensus:dashboard", project_id=project.pk)
