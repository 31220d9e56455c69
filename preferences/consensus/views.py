"""Admin page for blending: agreement (κ, α, percent), position flips, rater reliability and
gold accuracy, flagged consensus, and the project's blending settings."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Role
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError
from preferences.labelers.config import NOT_CONFIGURED, llm_configured
from preferences.labelers.selectors import flip_rate_by_facet
from preferences.models import Choice

from .charts import horizontal_bars
from .models import GoldItem, Method
from .selectors import (
    agreement_by_facet,
    consensus_confidence_histogram,
    consensus_list,
    consensus_pending,
    consensus_policy_get,
    rater_reliability_list,
)
from .services import (
    consensus_policy_update,
    consensus_recompute,
    gold_items_create,
)

CONSENSUS_PAGE_SIZE = 25


def _filters(request, facets) -> dict:
    """The consensus table's filters from the query string; unknown values are ignored."""
    facet = request.GET.get("facet", "")
    label = request.GET.get("label", "")
    return {
        "flagged_only": request.GET.get("flagged") == "1",
        "facet_key": facet if facet in {f.key for f in facets} else "",
        "label": label if label in Choice.values else "",
    }


def _agreement_chart(agreement: list[dict]):
    return horizontal_bars(
        [
            (
                row["facet"].label,
                row["percent"],
                "no items with 2 raters" if row["percent"] is None else f"{row['percent']} %",
            )
            for row in agreement
        ],
        maximum=100,
        flag_below=60,
    )


def _confidence_chart(histogram: list[dict]):
    most = max((band["count"] for band in histogram), default=0)
    return horizontal_bars(
        [
            (
                f"{band['low']:.1f}–{band['high']:.1f}",
                band["count"],
                f"{band['count']}" + (f" ({band['flagged']} flagged)" if band["flagged"] else ""),
            )
            for band in histogram
        ],
        maximum=most,
    )


@require_GET
@login_required
def consensus_dashboard(request, project_id: int):
    # Reads only: labels are as the last refresh left them; the page says how many pairs wait.
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    flips = {row["facet"].id: row for row in flip_rate_by_facet(project=project)}
    agreement = [
        dict(row, flip=flips.get(row["facet"].id)) for row in agreement_by_facet(project=project)
    ]
    facets = [row["facet"] for row in agreement]
    filters = _filters(request, facets)
    page = Paginator(
        consensus_list(
            project=project,
            flagged_only=filters["flagged_only"],
            facet_key=filters["facet_key"] or None,
            label=filters["label"] or None,
        ),
        CONSENSUS_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    policy = consensus_policy_get(project=project)
    histogram = consensus_confidence_histogram(
        project=project, facet_key=filters["facet_key"] or None
    )
    query = urlencode(
        {
            k: v
            for k, v in {
                "flagged": "1" if filters["flagged_only"] else "",
                "facet": filters["facet_key"],
                "label": filters["label"],
            }.items()
            if v
        }
    )
    return render(
        request,
        "consensus/dashboard.html",
        {
            "project": project,
            "policy": policy,
            "pending": consensus_pending(project=project),
            "methods": [(Method.WEIGHTED, "Weighted vote"), (Method.DAWID_SKENE, "Dawid–Skene")],
            "agreement": agreement,
            "agreement_chart": _agreement_chart(agreement),
            "confidence_chart": _confidence_chart(histogram),
            "raters": rater_reliability_list(project=project),
            "page": page,
            "query": query,
            "filters": filters,
            "facets": facets,
            "labels": Choice.choices,
            "gold_count": GoldItem.objects.filter(pair__post__project=project).count(),
            "llm_configured": llm_configured(),
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
        messages.success(request, f"Settings saved; the consensus of {n} pairs was rebuilt.")
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
