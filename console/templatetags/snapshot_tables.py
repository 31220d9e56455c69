"""Filters that turn a snapshot's stored dicts (counts, filters) into rows for readable tables."""

from __future__ import annotations

from collections import defaultdict

from django import template

register = template.Library()

_GROUP_NAMES = {
    "source": "Pair source",
    "platform": "Platform",
    "decided_by": "Decided by",
    "tier": "Alt-text tier",
}

_FILTER_NAMES = {
    "project_id": "Project",
    "platforms": "Platforms",
    "splits": "Splits",
    "min_confidence": "Minimum consensus confidence",
    "facets": "Facets that decide a pair",
    "include_llm_only": "Pairs labelled only by the LLM",
    "include_imported": "Imported preferences",
    "include_corrections": "Corrections",
    "image_paths": "Image paths",
}


@register.filter
def count_groups(counts: dict) -> list[tuple[str, list[tuple[str, object]]]]:
    """{"records": 3, "skipped": {...}, "platform:twitter": 2} → [(group, [(value, n)])]."""
    groups: dict[str, list] = defaultdict(list)
    for key, value in (counts or {}).items():
        if isinstance(value, dict):
            groups[key.replace("_", " ").capitalize()].extend(sorted(value.items()))
        elif ":" in key:
            group, name = key.split(":", 1)
            groups[_GROUP_NAMES.get(group, group)].append((name, value))
        else:
            groups["Total"].append((key, value))
    order = ["Total", *sorted(g for g in groups if g != "Total")]
    return [(g, groups[g]) for g in order if g in groups]


def _shown(key: str, value) -> str:
    if isinstance(value, bool):
        return "included" if value else "left out"
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else ("all" if key != "facets" else "—")
    if value is None:
        return "—"
    return str(value)


@register.filter
def filter_rows(filters: dict) -> list[tuple[str, str]]:
    return [
        (_FILTER_NAMES.get(key, key.replace("_", " ")), _shown(key, value))
        for key, value in (filters or {}).items()
    ]
