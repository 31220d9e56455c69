"""Writes for projects and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from core.errors import ApplicationError

from .models import Membership, Project, Role

User = get_user_model()


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
    from preferences.services import facets_create_defaults

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


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f'Unknown role "{role}".')
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
