"""Training rounds as core.jobs jobs (rounds keep their own claim, round_claim, which resumes a
round in the phase it reached; the outbox, heartbeat and sweep are the shared ones)."""

from core.jobs import JobKind, register

from .models import ACTIVE_STATUSES, RoundStatus


def _stale_s() -> float:
    from .services import heartbeat_seconds

    return 3 * heartbeat_seconds()


ROUND_JOB = register(
    JobKind(
        name="round",
        model_path="modeltrain.TrainingRound",
        task_path="modeltrain.tasks:round_run_task",
        waiting=(RoundStatus.QUEUED,),
        active=tuple(ACTIVE_STATUSES),
        running=RoundStatus.RUNNING,
        stale_s=_stale_s,
        only={"external": False},
        preload=("modeltrain.mcmdpo.config",),
    )
)
