"""The vision encoder and projector can learn at a fraction of the language model's rate."""

import pytest
import torch

from modeltrain.mcmdpo.modeling import parameter_group
from modeltrain.mcmdpo.tiny import build_tiny_llava
from modeltrain.mcmdpo.trainer import split_vision_groups


def _groups(optimizer):
    return [
        ({parameter_group(n) for n in names(optimizer, g)}, g["lr"], g["weight_decay"])
        for g in optimizer.param_groups
    ]


def names(optimizer, group):
    return [n for n, p in _MODEL.named_parameters() if any(p is q for q in group["params"])]


_MODEL, _ = build_tiny_llava(["one red circle on the left"])


def test_vision_and_projector_get_the_scaled_rate_in_every_group():
    decay = [p for n, p in _MODEL.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in _MODEL.named_parameters() if not n.endswith("weight")]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=2e-3
    )
    split_vision_groups(optimizer, _MODEL, 0.1)
    groups = _groups(optimizer)
    assert {frozenset(k) for k, _, _ in groups} == {
        frozenset({"language"}),
        frozenset({"vision", "projector"}),
    }
    for kinds, lr, _ in groups:
        assert kinds in ({"language"}, {"vision", "projector"})
        assert lr == (2e-3 if kinds == {"language"} else 2e-3 * 0.1)
    # Each parameter keeps its original group's weight decay; none is lost or doubled.
    decayed = {id(p) for p in decay}
    for group in optimizer.param_groups:
        assert {id(p) in decayed for p in group["params"]} == {group["weight_decay"] == 0.1}
    seen = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in _MODEL.parameters())


def test_a_group_without_vision_parameters_is_left_alone():
    language = [p for n, p in _MODEL.named_parameters() if parameter_group(n) == "language"]
    optimizer = torch.optim.AdamW(language, lr=1e-3)
    split_vision_groups(optimizer, _MODEL, 0.1)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("method", ["sft", "dpo", "mcmdpo"])
def test_every_method_trains_with_the_configured_vision_rate(tmp_path, method):
    from transformers import TrainerCallback

    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.demo_model import DemoRecipe, save_untrained
    from modeltrain.mcmdpo.run import run_training
    from modeltrain.mcmdpo.tiny import TinyShape

    task = alttext_task.write_task(tmp_path / "task", seed=0, talt=4, palt=4, test=0)
    init = save_untrained(tmp_path / "init", DemoRecipe(shape=TinyShape(patch_size=16)))
    seen = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, model=None, **kwargs):
            group_of = {id(p): parameter_group(n) for n, p in model.named_parameters()}
            seen.extend(
                ({group_of[id(p)] for p in g["params"]}, g["lr"]) for g in optimizer.param_groups
            )

    config = MCMDPOConfig(
        method=method,
        base_model=str(init),
        learning_rate=1e-3,
        vision_lr_scale=0.25,
        lr_scheduler="constant",
        warmup_ratio=0.0,
        per_device_batch_size=2,
        max_steps=1,
        save_steps=10**9,
        resume=False,
    )
    snapshot = task.talt if method == "sft" else task.palt
    run_training(config, snapshot, tmp_path / "out", extra_callbacks=[Rates()])
    assert seen and all(
        lr == (1e-3 if kinds == {"language"} else 2.5e-4) and len(kinds & {"language"}) in (0, 1)
        for kinds, lr in seen
    ), seen
    assert {lr for _, lr in seen} == {1e-3, 2.5e-4}
