"""FSDP2 full fine-tuning under the launch line a round uses, on the CPU (gloo): resume works.

A resumed FSDP run reloads the gathered model and every parameter's optimizer state; a trainable
parameter the model never uses has no optimizer state, so training keeps such parameters frozen
(FamilyAdapter.unused_parameters), which is what lets the resume below finish.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_cli import ENV, REPO_ROOT  # tests/mcmdpo is on sys.path (no package)
from test_mcmdpo_ddp import free_port

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.launch import fsdp_wrap_classes, launch_command
from modeltrain.mcmdpo.progress import ProgressReader


def _run(tiny_base, synthetic_snapshot, output: Path, config: Path, steps: int, port: int):
    config.write_text(json.dumps({
        "use_lora": False, "per_device_batch_size": 1, "max_steps": steps, "save_steps": 2,
        "save_total_limit": None, "learning_rate": 1e-4, "warmup_ratio": 0.0,
    }))  # fmt: skip
    argv = launch_command(
        strategy="fsdp", processes=2, snapshot=synthetic_snapshot, base=str(tiny_base),
        method="mcmdpo", output=output, config=config, cpu=True, main_process_port=port,
        fsdp_wrap=fsdp_wrap_classes(str(tiny_base)),
    )  # fmt: skip
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), ENV.get("PYTHONPATH", "")])}
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_fsdp_run_resumes_from_its_sealed_checkpoint(tiny_base, synthetic_snapshot, tmp_path):

    output, config = tmp_path / "out", tmp_path / "config.json"
    first = _run(tiny_base, synthetic_snapshot, output, config, 2, free_port())
    assert first.returncode == 0, first.stderr[-3000:]
    assert (output / "checkpoint-2" / "pytorch_model_fsdp.bin").exists()  # really FSDP's state

    second = _run(tiny_base, synthetic_snapshot, output, config, 4, free_port())
    assert second.returncode == 0, second.stderr[-3000:]
    end = [e for e in ProgressReader(output).new_events() if e["event"] == "end"][-1]
    assert end["resumed_from"].endswith("checkpoint-2") and end["global_step"] == 4
    assert checkpoints.is_complete(output / "final")


def test_llava_freezes_the_vision_layers_it_never_reads(tiny_model_and_processor):
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.families import adapter_for
    from modeltrain.mcmdpo.modeling import prepare_trainable

    model, _ = tiny_model_and_processor
    adapter = adapter_for(model.config)
    assert adapter.unused_parameters(model) == {
        "model.vision_tower.post_layernorm.weight",
        "model.vision_tower.post_layernorm.bias",
    }  # feature layer -1: every encoder layer is read, the final norm is not
    model.config.vision_feature_layer = -2  # LLaVA-1.5's: the last encoder layer goes unread
    try:
        unused = adapter.unused_parameters(model)
        assert any(".encoder.layers.0." in name for name in unused)
        import copy

        trained = prepare_trainable(copy.deepcopy(model), MCMDPOConfig(use_lora=False))
        frozen = {n for n, p in trained.named_parameters() if not p.requires_grad}
        assert frozen == unused
    finally:
        model.config.vision_feature_layer = -1
