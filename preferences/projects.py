"""Creating projects: a labelling campaign is a Project (annotate) with the facets raters answer
(here), so creation lives on the side that owns facets."""

from __future__ import annotations

from django.db import transaction

from annotate.models import Project
from core.errors import ApplicationError

from .services import facets_create_defaults


@transaction.atomic
def project_create(
    *,
    name: str,
    guidelines: str = "",
    platforms: list[str] | None = None,
    overlap: int = 1,
    reservation_seconds: int = 600,
) -> Project:
    """Create a project with the default facet set."""
    name = name.strip()
    if not name:
        raise ApplicationError("A project needs a name.")
    if Project.objects.filter(name=name).exists():
        raise ApplicationError(f'A project named "{name}" already exists.')
    project = Project.objects.create(
        name=name,
        guidelines=guidelines,
        platforms=platforms or [],
        overlap=overlap,
        reservation_seconds=reservation_seconds,
    )
    facets_create_defaults(project=project)
    return project


def project_get_or_create(*, name: str) -> tuple[Project, bool]:
    existing = Project.objects.filter(name=name.strip()).first()
    if existing is not None:
        return existing, False
    return project_create(name=name), True
