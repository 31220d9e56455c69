"""Start a training round on a snapshot from the command line (and optionally wait for it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from modeltrain.models import TrainingRound
from modeltrain.services import round_start


class Command(BaseCommand):
    help = "Queue an SFT, DPO or MCM-DPO round on the gpu queue; --wait follows it to the end."

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", type=int, required=True, help="snapshot id")
        parser.add_argument("--method", choices=["sft", "dpo", "mcmdpo"], default="mcmdpo")
        base = parser.add_mutually_exclusive_group()
        base.add_argument("--base", default="", help='model folder, hub id, or "tiny"')
        base.add_argument("--from-round", type=int, help="start from this round's model")
        parser.add_argument("--config", help="JSON file: hyper-parameters (and 'options')")
        parser.add_argument("--paradigm", default="both")
        parser.add_argument("--negative", default="noise", help="corrupted-image type")
        parser.add_argument(
            "--user", help="username recorded as the starter (default: a superuser)"
        )
        parser.add_argument(
            "--processes", type=int, help="training processes (default: one per worker GPU)"
        )
        parser.add_argument(
            "--strategy",
            default="",
            choices=["", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"],
            help="default: ddp for LoRA, fsdp for full fine-tuning",
        )
        parser.add_argument("--wait", action="store_true", help="wait and print progress")
        parser.add_argument("--timeout", type=float, default=0, help="--wait limit in seconds")

    def handle(self, *args, **opts):
        hyper, round_options = {}, None
        if opts["config"]:
            try:
                data = json.loads(Path(opts["config"]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"--config {opts['config']}: {exc}") from None
            if not isinstance(data, dict):
                raise CommandError("--config must hold a JSON object")
            round_options = data.pop("options", None)
            hyper = data
        users = get_user_model().objects
        user = (
            users.filter(username=opts["user"]).first()
            if opts["user"]
            else users.filter(is_superuser=True).order_by("id").first()
        )
        if user is None:
            raise CommandError("No such user (create a superuser or pass --user).")
        try:
            round_ = round_start(
                user=user,
                snapshot_id=opts["snapshot"],
                method=opts["method"],
                base_model=opts["base"],
                from_round_id=opts["from_round"],
                paradigm=opts["paradigm"],
                negative_type=opts["negative"],
                hyperparameters=hyper,
                options=round_options,
                processes=opts["processes"],
                strategy=opts["strategy"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"round {round_.pk} queued")
        if not opts["wait"]:
            return
        started, seen = time.monotonic(), None
        while True:
            round_ = TrainingRound.objects.get(pk=round_.pk)
            state = (round_.status, round_.step)
            if state != seen:
                loss = "" if round_.loss is None else f" loss {round_.loss:.4f}"
                self.stdout.write(
                    f"round {round_.pk}: {round_.status} {round_.step}/{round_.total_steps}{loss}"
                )
                seen = state
            if round_.is_finished:
                break
            if opts["timeout"] and time.monotonic() - started > opts["timeout"]:
                raise CommandError(f"round {round_.pk} still {round_.status} after --timeout")
            time.sleep(1)
        if round_.status != "done":
            raise CommandError(f"round {round_.pk} {round_.status}: {round_.error}")
        self.stdout.write(json.dumps({"round": round_.pk, "scores": round_.scores}))
