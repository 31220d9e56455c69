"""Batched beam-search generation of alt-text for (image, context) pairs."""

from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.generate import generate_alt_texts, load_trained
from modeltrain.mcmdpo.run import run_training


def test_generation_after_sft_is_batched_limited_and_loads_the_round(
    tiny_base, synthetic_snapshot, tmp_path
):
    cfg = MCMDPOConfig(
        base_model=str(tiny_base), method="sft", use_lora=False, learning_rate=6e-3, max_steps=20,
        per_device_batch_size=4, save_steps=100, warmup_ratio=0.0,
    )  # fmt: skip
    result = run_training(cfg, synthetic_snapshot, tmp_path / "sft")
    model, processor = load_trained(result.final_dir)
    records = read_records(synthetic_snapshot)[:5]
    items = [(r.image_path, r.context) for r in records]

    batched = generate_alt_texts(
        model, processor, items, num_beams=3, max_new_tokens=8, batch_size=5
    )
    one_by_one = [
        generate_alt_texts(model, processor, [item], num_beams=3, max_new_tokens=8)[0]
        for item in items
    ]
    assert batched == one_by_one  # left padding does not change what a row generates
    assert all(
        0 < len(processor.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 8 for t in batched
    )
    # the fine-tuned model writes in the training alt-texts' vocabulary ("a <colour> <shape> for <topic>")
    assert sum(text.startswith("a ") and " for " in text for text in batched) >= 4, batched

    short = generate_alt_texts(model, processor, items[:2], num_beams=1, max_new_tokens=2)
    assert all(
        len(processor.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 2 for t in short
    )
