"""The family matrix: every supported VLM family × SFT, DPO, MCM-DPO packed and unpacked, generation.

Tiny models of each family are built from configs (tiny_families); nothing is downloaded. Packed
and unpacked log-probs must agree within 1e-4 for every family, which is what catches a family
whose image inputs, image-token layout, attention or positions the packing gets wrong.
"""

import pytest
import torch

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.data import NegativeSpec, PreferenceDataset
from modeltrain.mcmdpo.families import UnsupportedModel, adapter_for
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.generate import generate_alt_texts
from modeltrain.mcmdpo.modeling import load_model_and_processor, prepare_trainable
from modeltrain.mcmdpo.packing import condition_logps, packed_layout, unpacked_layout
from modeltrain.mcmdpo.refcache import dataset_condition_logps
from modeltrain.mcmdpo.run import run_training
from modeltrain.mcmdpo.tiny_families import FAMILIES, save_tiny

SUPPORTED = [name for name in FAMILIES if name != "mllama"]
# Every kind of losing image: pixel noise and blank (Idefics3 would drop an all-zero tile), a
# cropped or rotated picture re-processed (patch/tile families) or pixels, another record's image.
NEGATIVES = ("noise", "blank", "crop", "rotate", "swap")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    from modeltrain.mcmdpo.synthetic import write_snapshot

    return write_snapshot(tmp_path_factory.mktemp("matrix-snapshot"), count=6, seed=0)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Saved tiny models, built once per family on first use."""
    from modeltrain.mcmdpo.synthetic import vocabulary

    built = {}

    def get(family: str):
        if family not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{family}")
            built[family] = save_tiny(folder, family, list(vocabulary()))
        return built[family]

    return get


@pytest.mark.parametrize("family", SUPPORTED)
def test_packed_log_probs_equal_unpacked(family, bases, snapshot):
    model, processor = load_model_and_processor(str(bases(family)))
    model.eval()
    records = read_records(snapshot)
    pad = processor.tokenizer.pad_token_id
    for kind in NEGATIVES:
        dataset = PreferenceDataset(records, processor, negatives=NegativeSpec(image=kind, seed=2))
        examples = [dataset[0], dataset[3]]
        packed, unpacked = packed_layout(examples, pad), unpacked_layout(examples, pad)
        with torch.no_grad():
            from_packed = condition_logps(model, packed)
            from_unpacked = condition_logps(model, unpacked)
        difference = (from_packed - from_unpacked).abs().max().item()
        assert difference <= 1e-4, (family, kind, difference)
        # the image and the context reach the scores in every family
        assert from_packed[:, 0, 0, 0].ne(from_packed[:, 0, 1, 0]).all(), (family, kind)
        assert from_packed[:, 0, 0, 0].ne(from_packed[:, 1, 0, 0]).all(), (family, kind)
        # the tree is smaller than the eight sequences it stands for
        assert packed.num_tokens < unpacked.num_tokens


@pytest.mark.parametrize("family", SUPPORTED)
def test_every_trainable_parameter_gets_a_gradient(family, bases, snapshot):
    """An unused trainable parameter stalls DDP and breaks an FSDP resume: none may be left."""
    model, processor = load_model_and_processor(str(bases(family)))
    model = prepare_trainable(model, MCMDPOConfig(use_lora=False))
    dataset = PreferenceDataset(read_records(snapshot), processor)
    layout = packed_layout([dataset[0], dataset[1]], processor.tokenizer.pad_token_id)
    condition_logps(model.train(), layout).sum().backward()
    idle = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not idle, (family, idle)


def _config(base, method, **overrides):
    values = dict(
        base_model=str(base), method=method, use_lora=False, per_device_batch_size=2, max_steps=2,
        save_steps=100, learning_rate=1e-3, warmup_ratio=0.0, lr_scheduler="constant", beta=1.0,
    )  # fmt: skip
    values.update(overrides)
    return MCMDPOConfig(**values)


@pytest.mark.parametrize("family", SUPPORTED)
def test_every_method_trains(family, bases, snapshot, tmp_path):
    base = bases(family)
    results, trl_first_logs = {}, {}
    runs = {
        "sft": _config(base, "sft"),
        # the whole snapshot in one batch: its logged log-probs are a mean over every record
        "dpo": _config(base, "dpo", per_device_batch_size=6),
        "mcmdpo-packed": _config(base, "mcmdpo", packed=True),
        "mcmdpo-unpacked": _config(base, "mcmdpo", packed=False),
    }
    for name, config in runs.items():
        result = run_training(config, snapshot, tmp_path / name)
        assert result.global_step == 2, (family, name)
        assert checkpoints.is_complete(result.final_dir), (family, name)
        losses = [entry["loss"] for entry in result.history]
        assert losses and all(torch.isfinite(torch.tensor(losses))), (family, name, losses)
        results[name] = losses
        trl_first_logs[name] = result.history[0]["logs"]
    # same weights, same data, same reference: packing changes the cost, not the numbers
    packed, unpacked = results["mcmdpo-packed"], results["mcmdpo-unpacked"]
    assert packed == pytest.approx(unpacked, abs=1e-4), (family, packed, unpacked)
    # trl's DPO scores exactly what MCM-DPO's response dimension scores: same prompt, image
    # inputs, attention (PaliGemma's prefix-LM included), positions, and the closing EOS
    trl_logs = trl_first_logs["dpo"]
    model, processor = load_model_and_processor(str(base))
    ours = dataset_condition_logps(model, PreferenceDataset(read_records(snapshot), processor))
    assert trl_logs["logps/chosen"] == pytest.approx(ours[:, 0, 0, 0].mean().item(), abs=1e-3)
    assert trl_logs["logps/rejected"] == pytest.approx(ours[:, 0, 0, 1].mean().item(), abs=1e-3)


@pytest.mark.parametrize("family", SUPPORTED)
def test_generation(family, bases, snapshot):
    model, processor = load_model_and_processor(str(bases(family)))
    records = read_records(snapshot)
    items = [(records[0].image_path, records[0].context), (records[1].image_path, "short")]
    texts = generate_alt_texts(
        model.eval(), processor, items, num_beams=2, max_new_tokens=4, batch_size=2
    )
    assert len(texts) == 2 and all(isinstance(text, str) for text in texts)
    # batched, left-padded generation gives each row what it gives alone
    alone = generate_alt_texts(model, processor, items[1:], num_beams=2, max_new_tokens=4)
    assert alone == texts[1:], family


def test_mllama_is_refused_before_training(bases, snapshot, tmp_path):
    base = bases("mllama")
    with pytest.raises(UnsupportedModel, match="cross-attention"):
        run_training(_config(base, "mcmdpo"), snapshot, tmp_path / "run")
    assert not (tmp_path / "run" / "final").exists()


def test_a_family_without_adapter_is_refused_by_name():
    from transformers import AutoConfig

    config = AutoConfig.for_model("blip-2")
    with pytest.raises(UnsupportedModel, match="blip-2.*Supported: .*qwen2_5_vl"):
        adapter_for(config)
