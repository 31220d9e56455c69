"""Celery tasks (default queue) for blending: the Dawid–Skene refit, refreshing marked pairs."""

from celery import shared_task


@shared_task(name="consensus.reliability_fit")
def reliability_fit_task(project_id: int) -> dict:
    from annotate.models import Project

    from .services import reliability_fit

    project = Project.objects.filter(pk=project_id).first()
    return reliability_fit(project=project) if project else {"raters": 0, "items": 0}


@shared_task(name="consensus.refresh")
def consensus_refresh_task(project_id: int) -> int:
    """Queued by preferences.marks after a write commits (at most one waiting per project)."""
    from django.core.cache import cache

    from preferences.marks import refresh_key

    from .services import consensus_refresh

    # First: a mark committed from now on queues another refresh, one committed before is read
    # below. A deleted project has no marks left (they cascade), so this is then a no-op.
    cache.delete(refresh_key(project_id))
    return consensus_refresh(project_id=project_id)
