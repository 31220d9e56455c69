"""The command line that runs the `train` CLI on one machine's GPUs or across machines.

`launch_command` builds the argv (no shell) for a strategy — ``ddp``, ``fsdp`` (FSDP2, full
sharding), ``deepspeed_zero2``, ``deepspeed_zero3`` — from the accelerate config files shipped
next to this module (``launch_configs/*.yaml``). One process on one machine runs the CLI
directly; anything more goes through ``accelerate launch``. Django-free: the Celery round, the
``round_launch_command`` management command and a person on a cluster all use it.

CPU (no CUDA; tests and demos): multi-process runs use gloo. accelerate 1.15 never switches a
``MULTI_CPU`` state to FSDP (AcceleratorState only does so for GPU-like device types), so the
FSDP environment would be silently ignored and the round would train as plain DDP. torch's
``fully_shard`` itself works on CPU with gloo, so on CPU the ``fsdp`` strategy runs
``python -m modeltrain.mcmdpo.launch train ...``: the same CLI after `_allow_cpu_fsdp` lets the
state become FSDP (and gathers the sharded weights when saving, which accelerate leaves sharded
on a CPU mesh). DeepSpeed needs CUDA (and the ``deepspeed`` package): refused on CPU.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

STRATEGIES = ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")
CONFIG_DIR = Path(__file__).with_name("launch_configs")
DEFAULT_PORT = 29500


class LaunchError(ValueError):
    """A launch that cannot work as asked (unknown strategy, DeepSpeed without CUDA, ...)."""


def config_file(strategy: str) -> Path:
    if strategy not in STRATEGIES:
        raise LaunchError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    return CONFIG_DIR / f"{strategy}.yaml"


def default_strategy(*, use_lora: bool) -> str:
    """LoRA: every process holds the (frozen) model, DDP is enough. Full fine-tuning: shard it."""
    return "ddp" if use_lora else "fsdp"


def fsdp_wrap_classes(base_model: str) -> list[str]:
    """The model's `_no_split_modules` classes that really occur in it (FSDP wraps each one).

    transformers' LLaVA lists every CLIP block, CLIPTextEmbeddings included, which a LLaVA does
    not contain; accelerate's default (all of `_no_split_modules`) then fails on GPU and CPU
    alike. The model is built on the meta device: no weights are read.
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(base_model)
    with init_empty_weights():
        model = AutoModelForImageTextToText.from_config(config)
    present = {type(module).__name__ for module in model.modules()}
    return sorted(name for name in (model._no_split_modules or []) if name in present)


def launch_command(
    *,
    strategy: str,
    processes: int,
    snapshot: str | os.PathLike,
    base: str,
    method: str,
    output: str | os.PathLike,
    config: str | os.PathLike | None = None,
    nodes: int = 1,
    machine_rank: int | str = 0,
    main_process_ip: str | None = None,
    main_process_port: int | None = None,
    cpu: bool = False,
    fsdp_wrap: list[str] | None = None,
    python: str | None = None,
) -> list[str]:
    """argv for `processes` processes per machine on `nodes` machines (world = processes×nodes).

    `machine_rank` may be a placeholder string (e.g. "$MACHINE_RANK") for a printed multi-node line.
    """
    python = python or sys.executable
    if processes < 1 or nodes < 1:
        raise LaunchError("processes and nodes must be at least 1")
    path = config_file(strategy)
    if cpu and strategy.startswith("deepspeed"):
        raise LaunchError(f"{strategy} needs CUDA GPUs; on a CPU machine use ddp or fsdp")
    train = ["train", "--snapshot", str(snapshot), "--base", str(base), "--method", method]
    train += ["--output", str(output)]
    if config is not None:
        train += ["--config", str(config)]
    if processes == 1 and nodes == 1:
        return [python, "-m", "modeltrain.mcmdpo", *train]
    argv = [python, "-m", "accelerate.commands.launch", "--config_file", str(path)]
    argv += ["--num_processes", str(processes * nodes), "--num_machines", str(nodes)]
    argv += ["--machine_rank", str(machine_rank)]
    if nodes > 1 or main_process_ip:
        argv += ["--main_process_ip", main_process_ip or "127.0.0.1"]
    argv += ["--main_process_port", str(main_process_port or DEFAULT_PORT)]
    if strategy == "fsdp" and fsdp_wrap:
        argv += ["--fsdp_transformer_layer_cls_to_wrap", ",".join(fsdp_wrap)]
    module = "modeltrain.mcmdpo.launch" if cpu and strategy == "fsdp" else "modeltrain.mcmdpo"
    return [*argv, "-m", module, *train]


def _allow_cpu_fsdp() -> None:
    """Let accelerate's state become FSDP on a gloo (MULTI_CPU) run, as it does on GPUs."""
    from accelerate import state
    from accelerate.utils import DistributedType

    original = state.AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        wanted = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        # A later AcceleratorState() (no plugin; Trainer's resume path makes one) copies the
        # process state's MULTI_CPU back: keep the plugin of the first call, and FSDP with it.
        plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
        if wanted and plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin

    state.AcceleratorState.__init__ = init

    from accelerate import Accelerator

    original_get_state_dict = Accelerator.get_state_dict

    def get_state_dict(self, model, unwrap=True):
        # On a CPU mesh, get_model_state_dict(full_state_dict=True, cpu_offload=True) hands back
        # the sharded DTensors themselves, which safetensors cannot save ("invalid python
        # storage"). Gather them here; every process calls this (Trainer.save_model).
        from torch.distributed.tensor import DTensor

        gathered = original_get_state_dict(self, model, unwrap=unwrap)
        return {
            name: value.full_tensor() if isinstance(value, DTensor) else value
            for name, value in gathered.items()
        }

    Accelerator.get_state_dict = get_state_dict


if __name__ == "__main__":  # the CPU FSDP entry point: the train CLI, FSDP allowed on gloo
    import runpy

    _allow_cpu_fsdp()
    # Exactly `python -m modeltrain.mcmdpo ...` (argv passes through): nothing but the CLI's
    # command line is relied on.
    sys.argv[0] = "modeltrain.mcmdpo"
    runpy.run_module("modeltrain.mcmdpo", run_name="__main__", alter_sys=True)
