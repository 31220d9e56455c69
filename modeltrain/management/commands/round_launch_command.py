"""Print the multi-node `accelerate launch` line of a round (and write the config it names).

Every machine runs the printed line with its own MACHINE_RANK (0 on the main machine); the
snapshot, base model and output folder must be on storage every machine sees. When the run has
finished, `manage.py round_attach <round> <output folder>` hands it back to the round.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from modeltrain import selectors, services
from modeltrain.models import TrainingRound


class Command(BaseCommand):
    help = "Print the multi-node accelerate launch line for a round's snapshot and config."

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument("--nodes", type=int, required=True, help="machines in the run")
        parser.add_argument(
            "--processes-per-node",
            type=int,
            help="training processes (GPUs) per machine (default: the round's, else 8)",
        )
        parser.add_argument("--main-process-ip", default="$MAIN_PROCESS_IP")
        parser.add_argument("--main-process-port", type=int, default=29500)
        parser.add_argument("--output-dir", help="run folder (default: the round's)")

    def handle(self, *args, **opts):
        from modeltrain.mcmdpo.launch import LaunchError, fsdp_wrap_classes

        round_ = TrainingRound.objects.filter(pk=opts["round_id"]).first()
        if round_ is None:
            raise CommandError(f"No round {opts['round_id']}.")
        if opts["nodes"] < 1 or (opts["processes_per_node"] or 1) < 1:
            raise CommandError("--nodes and --processes-per-node must be at least 1.")
        try:
            prepared = services.round_launch_prepare(round_=round_, output_dir=opts["output_dir"])
            wrap = fsdp_wrap_classes(prepared["base"]) if round_.strategy == "fsdp" else None
            line = selectors.round_launch_line(
                round_=round_,
                nodes=opts["nodes"],
                snapshot_dir=str(services.snapshot_folder(round_.snapshot)),
                output_dir=prepared["output_dir"],
                base=prepared["base"],
                processes_per_node=opts["processes_per_node"],
                main_process_ip=opts["main_process_ip"],
                main_process_port=opts["main_process_port"],
                fsdp_wrap=wrap,
            )
        except (ApplicationError, LaunchError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        self.stderr.write(f"config written to {prepared['config']}")
        self.stderr.write("run on every machine with MACHINE_RANK=0..N-1 set, then:")
        self.stderr.write(f"  manage.py round_attach {round_.pk} {prepared['output_dir']}")
        self.stdout.write(line)
