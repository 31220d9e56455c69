"""Reads for the project console: who may create projects, a project's members and imports."""

from __future__ import annotations

from annotate.models import Membership, Project, Role

from .models import ImportJob


def user_can_create_projects(*, user) -> bool:
    """Staff, and anyone who is admin of a project, may start a new one."""
    if not user.is_authenticated:
        return False
    return user.is_staff or Membership.objects.filter(user=user, role=Role.ADMIN).exists()


def project_members(*, project: Project) -> list[Membership]:
    return list(
        Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    )


def import_jobs_for(*, project: Project, limit: int = 20) -> list[ImportJob]:
    return list(ImportJob.objects.filter(project=project).select_related("created_by")[:limit])


def import_job_get(*, project: Project, job_id: int) -> ImportJob | None:
    return ImportJob.objects.filter(project=project, pk=job_id).first()
