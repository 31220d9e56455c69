"""Reference log-probs under flex_attention equal the SDPA ones: the cache gets training's mask.

transformers' flex_attention path adds a dense tensor mask to the scores instead of masking, so
a reference computed with the packed boolean mask would see future and sibling tokens. flex runs
on the CPU in torch 2.13 (compiled by inductor, some seconds for these shapes) with a BlockMask,
so the CPU test checks the real numbers; the CUDA variant runs where a GPU is present.
"""

import pytest
import torch

from modeltrain.mcmdpo.data import PreferenceDataset
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.loss import MCMWeights
from modeltrain.mcmdpo.modeling import load_model_and_processor
from modeltrain.mcmdpo.packing import condition_logps, packed_layout
from modeltrain.mcmdpo.refcache import load_or_compute

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_flex_reference_cache_equals_sdpa(tiny_base, synthetic_snapshot, tmp_path, device):
    from torch.nn.attention.flex_attention import BlockMask
    from transformers import TrainingArguments

    from modeltrain.mcmdpo.trainer import MCMDPOTrainer

    model, processor = load_model_and_processor(str(tiny_base))  # its own copy: switched below
    model = model.to(device).eval()
    dataset = PreferenceDataset(read_records(synthetic_snapshot)[:4], processor)

    def reference(cache, **kwargs):
        logps, _, hit = load_or_compute(
            model, dataset, cache_dir=tmp_path / cache, base_model=str(tiny_base),
            dtype=torch.float32, batch_size=4, **kwargs,
        )  # fmt: skip
        assert not hit
        return logps

    sdpa = reference("sdpa")
    model.set_attn_implementation("flex_attention")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), use_cpu=device == "cpu", report_to=[],
        per_device_train_batch_size=4,
    )  # fmt: skip
    trainer = MCMDPOTrainer(
        model=model, args=args, train_dataset=dataset, weights=MCMWeights(), attention="flex"
    )
    layout = packed_layout([dataset[i] for i in range(4)], processor.tokenizer.pad_token_id)
    assert isinstance(trainer._attention_mask(layout.to(device)), BlockMask)

    # The path run.py takes (the model decides) and the trainer's own mask builder.
    by_model = reference("flex-default")
    by_trainer = reference("flex-trainer", attention_mask_for=trainer._attention_mask)
    torch.testing.assert_close(by_model, sdpa, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(by_trainer, sdpa, atol=1e-4, rtol=1e-4)

    if device == "cuda":
        # What the cache held before the fix: the dense boolean mask, added to the scores. (On
        # the CPU that path does not run at all: inductor's CPU flex kernel crashes on it.)
        with torch.no_grad():
            leaky = condition_logps(model, layout.to(device)).float().cpu()
        assert (leaky - sdpa).abs().max() > 1e-2
