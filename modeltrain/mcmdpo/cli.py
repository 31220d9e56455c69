"""`python -m modeltrain.mcmdpo train`: one training run from the command line.

Placeholder for the `cli` branch's version (same contract): a thin wrapper over `run_training`
that writes ``<output>/progress.jsonl`` (progress.py), ``<output>/result.json`` and
``<output>/final/``. SIGTERM or a file ``<output>/STOP`` stops the run at the next step with a
sealed checkpoint (exit 0, end status "stopped"); a user error exits 2 with one line on stderr.
Runs unchanged under ``torchrun`` and ``accelerate launch``: every process runs it, only the main
one writes the log and the result.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from modeltrain.mcmdpo.progress import ProgressWriter

STOP_FILE = "STOP"
RESULT_FILE = "result.json"


class UserError(Exception):
    """Something the person running the command can fix (exit 2, one line on stderr)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modeltrain.mcmdpo")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one SFT, DPO or MCM-DPO run")
    train.add_argument("--snapshot", required=True, help="snapshot folder (mcmdpo format)")
    train.add_argument("--base", required=True, help="base model folder or hub id")
    train.add_argument("--method", required=True, choices=["sft", "dpo", "mcmdpo"])
    train.add_argument("--output", required=True, help="output folder (checkpoints, final/)")
    train.add_argument("--config", help="JSON file of MCMDPOConfig fields")
    train.add_argument("--resume", dest="resume", action="store_true", default=None)
    train.add_argument("--no-resume", dest="resume", action="store_false")
    return parser


def _config(args):
    from modeltrain.mcmdpo.config import MCMDPOConfig

    values = {}
    if args.config:
        try:
            values = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read --config {args.config}: {exc}") from None
        if not isinstance(values, dict):
            raise UserError(f"--config {args.config} must hold a JSON object")
    values.update(base_model=args.base, method=args.method)
    if args.resume is not None:
        values["resume"] = args.resume
    try:
        return MCMDPOConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid training options: {exc}") from None


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train(args) -> int:
    from transformers import TrainerCallback

    from modeltrain.mcmdpo import checkpoints
    from modeltrain.mcmdpo.run import run_training

    output = Path(args.output)
    if not Path(args.snapshot).is_dir():
        raise UserError(f"snapshot folder {args.snapshot} does not exist")
    config = _config(args)
    main = _is_main_process()
    writer = ProgressWriter(output, enabled=main)
    stop = {"signal": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))

    def should_stop() -> bool:
        return stop["signal"] or (output / STOP_FILE).exists()

    class CheckpointEvents(TrainerCallback):
        def on_save(self, args_, state, control, **kwargs):
            newest = checkpoints.newest_complete_checkpoint(output)
            if newest is not None:
                writer.write("checkpoint", step=state.global_step, path=str(newest))

    if main:
        output.mkdir(parents=True, exist_ok=True)
    resume_from = checkpoints.newest_complete_checkpoint(output) if config.resume else None
    writer.write(
        "start",
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        method=config.method.value,
        resumed_from=str(resume_from) if resume_from else None,
        pid=os.getpid(),
    )
    try:
        result = run_training(
            config,
            args.snapshot,
            output,
            lambda entry: writer.write("log", **entry),
            should_stop,
            [CheckpointEvents()],
        )
    except Exception as exc:
        writer.write("error", message=f"{type(exc).__name__}: {exc}"[-4000:])
        raise
    data = {
        "final_dir": str(result.final_dir) if result.final_dir else None,
        "global_step": result.global_step,
        "max_steps": result.max_steps,
        "resumed_from": str(result.resumed_from) if result.resumed_from else None,
        "stopped": result.stopped,
        "reference_cache": str(result.reference_cache) if result.reference_cache else None,
        "reference_cache_hit": result.reference_cache_hit,
    }
    if main:
        tmp = output / (RESULT_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, output / RESULT_FILE)
    writer.write("end", status="stopped" if result.stopped else "done", **data)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return train(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
