"""Refit Dawid–Skene reliabilities and rebuild consensus: python manage.py consensus_refit."""

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from preferences.consensus.services import reliability_fit


class Command(BaseCommand):
    help = "Refit rater reliabilities (Dawid–Skene) and recompute every consensus of a project."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project id or exact name.")

    def handle(self, *args, project, **options):
        found = (
            Project.objects.filter(pk=int(project)).first()
            if project.isdigit()
            else Project.objects.filter(name=project).first()
        )
        if found is None:
            raise CommandError(f'No project "{project}".')
        result = reliability_fit(project=found)
        self.stdout.write(f"Fitted {result['raters']} raters on {result['items']} items.")
