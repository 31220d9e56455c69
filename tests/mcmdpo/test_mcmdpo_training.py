"""Training end to end on the CPU with the tiny LLaVA: learning, resume, checkpoints, cache, DPO/SFT."""

import json

import pytest
import torch

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.data import PreferenceDataset
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.loss import margin_metrics
from modeltrain.mcmdpo.modeling import load_model_and_processor
from modeltrain.mcmdpo.refcache import dataset_condition_logps
from modeltrain.mcmdpo.run import run_training


def config(base, **overrides) -> MCMDPOConfig:
    values = dict(
        base_model=str(base), per_device_batch_size=4, learning_rate=3e-3, max_steps=6, save_steps=3,
        save_total_limit=None, warmup_ratio=0.0, lr_scheduler="constant", beta=1.0, lora_r=8,
    )  # fmt: skip
    values.update(overrides)
    return MCMDPOConfig(**values)


def test_mcmdpo_learns_to_use_image_and_context(tiny_base, synthetic_snapshot, tmp_path):
    cfg = config(
        tiny_base, use_lora=False, max_steps=40, per_device_batch_size=8, save_steps=100, lr_scheduler="cosine",
        warmup_ratio=0.1,
    )  # fmt: skip
    result = run_training(cfg, synthetic_snapshot, tmp_path / "run")
    assert result.global_step == 40 and checkpoints.is_complete(result.final_dir)

    model, processor = load_model_and_processor(str(result.final_dir))
    dataset = PreferenceDataset(read_records(synthetic_snapshot), processor)
    policy = dataset_condition_logps(model, dataset, batch_size=8)
    reference = torch.load(result.reference_cache, weights_only=True)
    metrics = {k: v.item() for k, v in margin_metrics(policy, reference, beta=cfg.beta).items()}
    assert metrics["rewards/accuracies"] > 0.9, metrics
    assert metrics["rewards/margins/image"] > 0, metrics
    assert metrics["rewards/margins/context"] > 0, metrics
    # the per-dimension figures reached the logs too
    assert {"rewards/margins/image", "rewards/accuracies/context"} <= set(result.last_metrics)


class CrashAt:
    """A callback that kills the run at a given step, as a preempted GPU worker would."""

    def __init__(self, step):
        from transformers import TrainerCallback

        outer = self

        class _Crash(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == outer.step:
                    raise KeyboardInterrupt("simulated crash")

        self.step = step
        self.callback = _Crash()


def losses(result) -> dict[int, float]:
    return {entry["step"]: entry["loss"] for entry in result.history}


def test_resume_after_a_crash_matches_an_uninterrupted_run(tiny_base, synthetic_snapshot, tmp_path):
    cfg = config(tiny_base, use_lora=True, reference_cache_dir=str(tmp_path / "cache"))
    uninterrupted = run_training(cfg, synthetic_snapshot, tmp_path / "a")
    assert uninterrupted.reference_cache_hit is False

    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, synthetic_snapshot, tmp_path / "b", extra_callbacks=[CrashAt(5).callback])
    assert [step for step, _ in checkpoints.checkpoints(tmp_path / "b")] == [3]

    resumed = run_training(cfg, synthetic_snapshot, tmp_path / "b")
    assert resumed.resumed_from.name == "checkpoint-3"
    assert resumed.reference_cache_hit is True  # same snapshot, base and negatives: read from disk
    assert sorted(losses(resumed)) == [4, 5, 6]
    expected = losses(uninterrupted)
    for step, loss in losses(resumed).items():
        assert loss == pytest.approx(expected[step], rel=1e-4, abs=1e-6), step
    assert resumed.global_step == 6


def test_truncated_or_unsealed_checkpoints_are_never_loaded(
    tiny_base, synthetic_snapshot, tmp_path
):
    cfg = config(tiny_base, use_lora=True, reference_cache_dir=str(tmp_path / "cache"))
    out = tmp_path / "run"
    run_training(cfg, synthetic_snapshot, out)
    assert [step for step, _ in checkpoints.checkpoints(out)] == [3, 6]
    # checkpoint-6 loses half of its adapter file; a checkpoint-9 never got its marker.
    weights = out / "checkpoint-6" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (out / "checkpoint-9").mkdir()
    (out / "checkpoint-9" / "trainer_state.json").write_text(json.dumps({"global_step": 9}))
    assert checkpoints.newest_complete_checkpoint(out).name == "checkpoint-3"

    resumed = run_training(cfg.with_overrides(max_steps=5), synthetic_snapshot, out)
    assert resumed.resumed_from.name == "checkpoint-3"
    assert sorted(losses(resumed)) == [4, 5]


def test_cancel_progress_and_atomic_final(tiny_base, synthetic_snapshot, tmp_path):
    seen = []
    calls = iter(range(100))
    result = run_training(
        config(tiny_base, use_lora=True, packed=False, precompute_reference=False, max_steps=10),
        synthetic_snapshot,
        tmp_path / "run",
        progress_callback=seen.append,
        should_stop=lambda: next(calls) >= 1,  # cancel after the second step
    )
    assert result.stopped and result.global_step == 2
    assert [entry["step"] for entry in seen] == [1, 2] and seen[0]["total"] == 10
    assert set(seen[0]["margins"]) >= {"response", "image", "context"}
    assert checkpoints.is_complete(
        tmp_path / "run" / "checkpoint-2"
    )  # a cancelled round can resume
    assert checkpoints.is_complete(result.final_dir)
    assert not list((tmp_path / "run").glob(checkpoints.STAGING_PREFIX + "*"))


def test_dpo_and_sft_through_trl(tiny_base, synthetic_snapshot, tmp_path):
    dpo = run_training(
        config(tiny_base, method="dpo", use_lora=True, max_steps=4, save_steps=2, beta=0.1),
        synthetic_snapshot,
        tmp_path / "dpo",
    )
    assert dpo.global_step == 4
    assert "rewards/accuracies" in dpo.last_metrics and "rewards/margins" in dpo.last_metrics
    assert checkpoints.is_complete(tmp_path / "dpo" / "checkpoint-4")
    assert (dpo.final_dir / "adapter_model.safetensors").exists()
    from modeltrain.mcmdpo.generate import load_trained

    merged, _ = load_trained(dpo.final_dir)  # the adapter, merged onto the base it names
    base, _ = load_model_and_processor(str(tiny_base))
    changed = [
        name for (name, p), (_, q) in zip(merged.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]  # fmt: skip
    assert any("language_model" in name for name in changed)

    sft = run_training(
        config(tiny_base, method="sft", use_lora=False, paradigm="both", max_steps=8, save_steps=100,
               learning_rate=3e-3),
        synthetic_snapshot,
        tmp_path / "sft",
    )  # fmt: skip
    history = losses(sft)
    assert history[8] < history[1]  # it learns the alt-text
    assert checkpoints.is_complete(sft.final_dir)


def test_paradigm_decides_what_trains(tiny_base):
    from modeltrain.mcmdpo.modeling import parameter_group, prepare_trainable

    for paradigm, method, vision_trains in [
        ("sft_only", "sft", True), ("sft_only", "mcmdpo", False), ("preference_only", "mcmdpo", True),
        ("frozen", "dpo", False),
    ]:  # fmt: skip
        model, _ = load_model_and_processor(str(tiny_base))
        cfg = MCMDPOConfig(base_model=str(tiny_base), method=method, paradigm=paradigm, use_lora=False,
                           train_projector=False)  # fmt: skip
        model = prepare_trainable(model, cfg)
        trained = {parameter_group(n) for n, p in model.named_parameters() if p.requires_grad}
        assert ("vision" in trained) == vision_trains, (paradigm, method)
        assert "projector" not in trained and "language" in trained

    model, _ = load_model_and_processor(str(tiny_base))
    lora = prepare_trainable(
        model, MCMDPOConfig(base_model=str(tiny_base), paradigm="frozen", use_lora=True)
    )
    trained = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert any("lora_" in n and "language_model" in n for n in trained)
    assert not any("lora_" in n and "vision_tower" in n for n in trained)
    assert any("multi_modal_projector" in n for n in trained)  # the projector is trained in full
