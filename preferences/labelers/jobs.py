"""LLM labelling runs as core.jobs jobs: each batch claims the run; between batches it is free."""

from core.jobs import JobKind, register

from .models import RunStatus

LABEL_RUN_JOB = register(
    JobKind(
        name="llm-run",
        model_path="labelers.LabelRun",
        task_path="preferences.labelers.tasks:label_run_batch_task",
        waiting=(RunStatus.QUEUED,),
        active=(RunStatus.RUNNING,),
        running=RunStatus.RUNNING,
    )
)
