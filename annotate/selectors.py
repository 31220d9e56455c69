"""Reads for projects: who may see what."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from core.api import MAX_ID
from core.errors import NotFound, PermissionDenied

from .models import ROLE_RANK, Membership, Project, Role


def project_list_for_user(*, user) -> QuerySet[Project]:
    """Projects the user belongs to (staff see all), with pair and post counts."""
    qs = Project.objects.all() if user.is_staff else Project.objects.filter(members=user)
    return qs.annotate(post_count=Count("posts", distinct=True)).order_by("name")


def project_role(*, project: Project, user) -> str | None:
    if user.is_staff:
        return Role.ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def project_get_for_user(*, user, project_id: int, min_role: str = Role.ANNOTATOR) -> Project:
    """The project if the user may act in it with at least `min_role`.

    Non-members get NotFound (the project's existence is not revealed); members below the role
    get PermissionDenied.
    """
    project = Project.objects.filter(pk=project_id).first()
    role = project_role(project=project, user=user) if project else None
    if project is None or role is None:
        raise NotFound("No such project.")
    if ROLE_RANK[Role(role)] < ROLE_RANK[Role(min_role)]:
        raise PermissionDenied(
            f"This needs the {Role(min_role).label.lower()} role in the project."
        )
    return project


def project_for_api(*, user, project_id: int, min_role: str) -> Project:
    """project_get_for_user for an id taken from a URL: one beyond the bigint range is no
    project (NotFound), not a database error."""
    if project_id > MAX_ID:
        raise NotFound("No such project.")
    return project_get_for_user(user=user, project_id=project_id, min_role=min_role)


def project_stats(*, project: Project) -> dict:
    return {
        "posts": project.posts.count(),
        "images": project.posts.values("image").distinct().count(),
        "alt_texts": project.posts.aggregate(n=Count("alt_texts"))["n"],
        # Through the posts' reverse relation (preferences' CandidatePair.post): the overview
        # counts pairs without this bottom app importing the app that defines them.
        "pairs": project.posts.aggregate(n=Count("pairs"))["n"],
        "members": Membership.objects.filter(project=project).count(),
    }
