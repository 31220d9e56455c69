"""Prefix-tree packing gives the unpacked 8-sequence log-probs (and gradients) with far fewer tokens."""

import pytest
import torch

from modeltrain.mcmdpo.data import NegativeSpec, PreferenceDataset, render_prompt
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.loss import mcm_dpo_loss
from modeltrain.mcmdpo.packing import condition_logps, packed_layout, unpacked_layout


@pytest.fixture(scope="module")
def sample_dataset(sample_dir, tiny_model_and_processor):
    _, processor = tiny_model_and_processor
    records = read_records(sample_dir)
    return lambda kind: PreferenceDataset(
        records,
        processor,
        negatives=NegativeSpec(image=kind, seed=3),
        max_response_tokens=24,
        max_context_chars=300,
    )


@pytest.mark.parametrize("kind", ["noise", "swap", "crop"])
def test_packed_log_probs_equal_unpacked(sample_dataset, tiny_model_and_processor, kind):
    model, processor = tiny_model_and_processor
    dataset = sample_dataset(kind)
    examples = [dataset[i] for i in (0, 7, 12)]  # pinterest and twitter records, different lengths
    pad = processor.tokenizer.pad_token_id
    packed, unpacked = packed_layout(examples, pad), unpacked_layout(examples, pad)
    with torch.no_grad():
        from_packed = condition_logps(model, packed)
        from_unpacked = condition_logps(model, unpacked)
    assert from_packed.shape == (3, 2, 2, 2)
    assert (from_packed - from_unpacked).abs().max().item() <= 1e-4
    # the 8 conditions really differ (image, context and response all change the numbers)
    assert from_packed[:, 0, 0, 0].ne(from_packed[:, 0, 1, 0]).all()
    assert from_packed[:, 0, 0, 0].ne(from_packed[:, 1, 0, 0]).all()
    # the packed rows hold far fewer tokens than the eight sequences
    assert packed.num_tokens < 0.6 * unpacked.num_tokens


def test_packed_gradients_equal_unpacked(sample_dataset, tiny_model_and_processor):
    model, processor = tiny_model_and_processor
    dataset = sample_dataset("noise")
    examples = [dataset[i] for i in (2, 15)]
    pad = processor.tokenizer.pad_token_id
    reference = torch.full((2, 2, 2, 2), -40.0)
    grads = []
    for layout in (packed_layout(examples, pad), unpacked_layout(examples, pad)):
        model.zero_grad()
        mcm_dpo_loss(condition_logps(model, layout), reference)[0].backward()
        grads.append(
            torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        )
    model.zero_grad()
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-3)


def test_a_branch_cannot_see_its_sibling(sample_dataset, tiny_model_and_processor):
    """Changing the rejected response must not change the chosen response's log-prob in the packed row."""
    model, processor = tiny_model_and_processor
    example = sample_dataset("noise")[4]
    pad = processor.tokenizer.pad_token_id
    with torch.no_grad():
        before = condition_logps(model, packed_layout([example], pad))
        example.response_ids[1] = list(reversed(example.response_ids[1])) + example.response_ids[0]
        after = condition_logps(model, packed_layout([example], pad))
    assert torch.allclose(before[..., 0], after[..., 0], atol=1e-5)
    assert not torch.allclose(before[..., 1], after[..., 1], atol=1e-3)


def test_segments_concatenate_to_the_processors_own_tokenisation(
    sample_dataset, tiny_model_and_processor
):
    _, processor = tiny_model_and_processor
    dataset = sample_dataset("noise")
    record = dataset.records[5]
    example = dataset[5]
    from modeltrain.mcmdpo.data import load_image

    prompt = render_prompt(processor, record.question)
    full = processor(
        images=[load_image(record.image_path)], text=[prompt + record.chosen], add_special_tokens=False,
        return_tensors="pt",
    )["input_ids"][0].tolist()  # fmt: skip
    ids, prompt_len = example.sequence(0, 0, 0)
    assert ids[:-1] == full  # everything but the EOS we append, exactly as trl appends it
    assert ids[-1] == processor.tokenizer.eos_token_id
    assert example.tail_ids[0] != example.tail_ids[1]  # the swapped context changes the prompt
