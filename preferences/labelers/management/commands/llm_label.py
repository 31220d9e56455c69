"""Start an LLM labelling run: python manage.py llm_label --project P --task correct|judge."""

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from core.errors import ApplicationError
from preferences.labelers.config import NOT_CONFIGURED, PROVIDERS, llm_configured
from preferences.labelers.models import LabelRun


class Command(BaseCommand):
    help = "Start LLM grammar correction or facet judging for a project (Celery, default queue)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project id or exact name.")
        parser.add_argument("--task", required=True, choices=["correct", "judge"])
        parser.add_argument("--limit", type=int, default=None, help="At most this many items.")
        parser.add_argument("--budget", default=None, help="USD cap for this run.")
        parser.add_argument(
            "--provider",
            choices=list(PROVIDERS),
            default=None,
            help="LLM provider (default: LLM_PROVIDER, else the first configured one).",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Process the batches in this process instead of on a Celery worker.",
        )

    def handle(self, *args, project, task, limit, budget, sync, provider, **options):
        if not llm_configured():
            # Plainly, and without a traceback: this is configuration, not a crash.
            self.stderr.write(NOT_CONFIGURED)
            raise SystemExit(2)
        found = (
            Project.objects.filter(pk=int(project)).first()
            if project.isdigit()
            else Project.objects.filter(name=project).first()
        )
        if found is None:
            raise CommandError(f'No project "{project}".')
        from preferences.labelers.services import label_run_batch, label_run_start

        try:
            run = label_run_start(
                project=found,
                task=task,
                limit=limit,
                budget_usd=budget,
                enqueue=not sync,
                provider=provider,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Run {run.pk}: {run.total} items to {task} ({run.status}).")
        if sync:
            while not run.is_finished:
                run = label_run_batch(run_id=run.pk)
                self.stdout.write(f"  {run.done} done, {run.failed} failed of {run.total}")
        run = LabelRun.objects.get(pk=run.pk)
        self.stdout.write(
            f"Run {run.pk} {run.get_status_display().lower()}: {run.done} done, {run.failed} "
            f"failed, {run.cache_hits} cached, {run.http_calls} HTTP calls, ${run.spent_usd:.4f}."
            + (f" {run.message}" if run.message else "")
        )
