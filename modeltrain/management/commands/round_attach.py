"""Attach a finished external `train` run (its output folder) to a round; the round then
evaluates and feeds back on the gpu queue like one it trained itself."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from modeltrain.services import round_attach


class Command(BaseCommand):
    help = "Attach a finished external run's output folder (sealed final/, result.json) to a round."

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument("output_dir", help="the run's --output folder (absolute path)")

    def handle(self, *args, **opts):
        try:
            round_ = round_attach(round_id=opts["round_id"], output_dir=opts["output_dir"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"round {round_.pk}: attached {round_.checkpoint_path} (step {round_.step}); "
            f"{round_.get_status_display().lower()} next"
        )
