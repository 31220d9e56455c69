"""Writes for project members (a project is created with its facets by preferences.projects)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from core.errors import ApplicationError

from .models import Membership, Project, Role

User = get_user_model()


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f'Unknown role "{role}".')
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
