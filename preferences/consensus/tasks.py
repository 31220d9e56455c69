"""Celery tasks (default queue) for blending: the Dawid–Skene refit."""

from celery import shared_task


@shared_task(name="consensus.reliability_fit")
def reliability_fit_task(project_id: int) -> dict:
    from annotate.models import Project

    from .services import reliability_fit

    project = Project.objects.filter(pk=project_id).first()
    return reliability_fit(project=project) if project else {"raters": 0, "items": 0}
