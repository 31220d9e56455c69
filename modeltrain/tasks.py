"""Celery tasks on the `gpu` queue (routed by module in settings.CELERY_TASK_ROUTES).

Tasks take ids and call services; torch is imported inside the task, never at module import,
so importing the tasks (every process does, for Celery's registry) does not load it and no CUDA
context exists before the worker forks. The web tier does load torch (never CUDA) on the pages
that need training settings: the rounds list and a round's start read
modeltrain.mcmdpo.config, whose loss and negatives import torch at module level.
"""

from celery import shared_task
from django.db import connection


@shared_task(bind=True, name="modeltrain.tasks.worker_report")
def worker_report(self) -> dict:
    """Report what a gpu-queue worker can use: the queue it consumed, torch, CUDA, the database."""
    import torch

    from annotate.models import Project

    delivery = self.request.delivery_info or {}
    return {
        "queue": delivery.get("routing_key") or delivery.get("queue"),
        "hostname": self.request.hostname,
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": torch.cuda.device_count(),
        "database": connection.vendor,
        "projects": Project.objects.count(),
    }


@shared_task(bind=True, name="modeltrain.tasks.round_run_task", max_retries=None)
def round_run_task(self, round_id: int) -> str:
    """Run or resume one training round. A message for a finished round is a no-op; one that
    finds a live worker holding the round comes back later instead of running it twice."""
    from modeltrain import services

    try:
        return services.round_run(round_id=round_id, task_id=self.request.id or "")
    except services.RoundBusy as exc:
        raise self.retry(exc=exc, countdown=3 * services.heartbeat_seconds()) from None
