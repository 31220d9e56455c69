"""Reads for LLM labelling: runs, cost, recent failures and the position-flip rate per facet."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum

from annotate.models import Project
from preferences.models import Facet

from .models import CallStatus, LabelRun, LLMCall, LLMVerdict


def label_run_list(*, project: Project) -> QuerySet[LabelRun]:
    return LabelRun.objects.filter(project=project).select_related("labeler", "started_by")[:20]


def label_run_get(*, project: Project, run_id: int) -> LabelRun | None:
    return LabelRun.objects.filter(project=project, pk=run_id).select_related("labeler").first()


def llm_cost_summary(*, project: Project) -> dict:
    calls = LLMCall.objects.filter(run__project=project)
    agg = calls.aggregate(
        calls=Count("id"),
        failed=Count("id", filter=Q(status=CallStatus.FAILED)),
        cost=Sum("cost_usd"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
    )
    return {k: (v or 0) for k, v in agg.items()}


def llm_call_failures(*, project: Project, limit: int = 10) -> QuerySet[LLMCall]:
    return LLMCall.objects.filter(run__project=project, status=CallStatus.FAILED)[:limit]


def flip_rate_by_facet(*, project: Project) -> list[dict]:
    """Per facet: LLM verdicts judged in both orders and how often the two orders disagreed."""
    rows = (
        LLMVerdict.objects.filter(facet__project=project)
        .values("facet_id")
        .annotate(n=Count("id"), flips=Count("id", filter=Q(flipped=True)))
    )
    by_facet = {r["facet_id"]: r for r in rows}
    out = []
    for facet in Facet.objects.filter(project=project):
        r = by_facet.get(facet.id, {"n": 0, "flips": 0})
        rate = round(100 * r["flips"] / r["n"], 1) if r["n"] else None
        out.append({"facet": facet, "n": r["n"], "flips": r["flips"], "flip_rate": rate})
    return out
