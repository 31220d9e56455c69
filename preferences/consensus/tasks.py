"""Celery tasks (default queue) for blending: the Dawid–Skene refit, draining pending pairs."""

from celery import shared_task


@shared_task(name="consensus.reliability_fit")
def reliability_fit_task(project_id: int) -> dict:
    from annotate.models import Project

    from .services import reliability_fit

    project = Project.objects.filter(pk=project_id).first()
    return reliability_fit(project=project) if project else {"raters": 0, "items": 0}


@shared_task(name="consensus.drain")
def consensus_drain_task(project_id: int) -> int:
    from .services import consensus_drain, consensus_drain_armed_clear

    consensus_drain_armed_clear(project_id=project_id)
    return consensus_drain(project_id=project_id)
