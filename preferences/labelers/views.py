"""Admin pages for LLM labelling: configuration state, start runs, watch progress, cost."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Role
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError, NotFound
from core.jobs import QUEUE_DOWN_MESSAGE

from .config import NOT_CONFIGURED, provider_default, providers_configured
from .models import LabelTask
from .selectors import (
    flip_rate_by_facet,
    label_run_get,
    label_run_list,
    llm_call_failures,
    llm_cost_summary,
)
from .services import label_run_cancel, label_run_retry, label_run_start


def _context(project) -> dict:
    default = provider_default()
    runs = list(label_run_list(project=project))
    return {
        "project": project,
        "configured": default is not None,
        "not_configured": NOT_CONFIGURED,
        # The configured providers an admin may pick for a run, the default one first.
        "providers": [
            {"key": p.key, "label": p.label, "cfg": p.settings()}
            for p in sorted(providers_configured(), key=lambda p: p is not default)
        ],
        "runs": runs,
        "any_active": any(not r.is_finished for r in runs),
        "cost": llm_cost_summary(project=project),
        "failures": llm_call_failures(project=project),
        "flips": flip_rate_by_facet(project=project),
        "tasks": LabelTask.choices,
    }


@require_GET
@login_required
def llm_dashboard(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    response = render(request, "labelers/dashboard.html", _context(project))
    response["Vary"] = "HX-Request"
    return response


@require_GET
@login_required
def llm_runs_fragment(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    return render(request, "labelers/dashboard.html#runs", _context(project))


@require_POST
@login_required
def llm_run_start(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    limit = request.POST.get("limit", "").strip()
    try:
        if limit and not limit.isdigit():
            raise ApplicationError("The limit must be a whole number.")
        run = label_run_start(
            project=project,
            task=request.POST.get("task", ""),
            user=request.user,
            limit=int(limit) if limit else None,
            budget_usd=request.POST.get("budget", "").strip() or None,
            provider=request.POST.get("provider", "").strip() or None,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if run.queue_down:
            messages.warning(request, f"Run {run.pk}: {QUEUE_DOWN_MESSAGE}")
        else:
            messages.success(
                request,
                f"Run {run.pk} started: {run.total} items to {run.get_task_display().lower()}.",
            )
    return redirect("labelers:dashboard", project_id=project.pk)


@require_POST
@login_required
def llm_run_cancel(request, project_id: int, run_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    run = label_run_get(project=project, run_id=run_id)
    if run is None:
        raise NotFound("No such run.")
    label_run_cancel(run=run)
    messages.success(request, f"Run {run.pk} cancelled.")
    return redirect("labelers:dashboard", project_id=project.pk)


@require_POST
@login_required
def llm_run_retry(request, project_id: int, run_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    run = label_run_get(project=project, run_id=run_id)
    if run is None:
        raise NotFound("No such run.")
    run = label_run_retry(run=run)
    if run.queue_down:
        messages.warning(request, f"Run {run.pk}: {QUEUE_DOWN_MESSAGE}")
    else:
        messages.success(request, f"Run {run.pk} started again: {run.total - run.done} to go.")
    return redirect("labelers:dashboard", project_id=project.pk)
