"""Writes for facets, pairs and judgements."""

from __future__ import annotations

from annotate.models import Project

from .models import DEFAULT_FACETS, Facet


def facets_create_defaults(*, project: Project) -> list[Facet]:
    """Give a project the default facet set (overall, faithful, context, concise, fluent)."""
    facets = [
        Facet(project=project, key=key, label=label, question=question, position=i)
        for i, (key, label, question) in enumerate(DEFAULT_FACETS)
    ]
    Facet.objects.bulk_create(facets, ignore_conflicts=True)
    return list(project.facets.all())
