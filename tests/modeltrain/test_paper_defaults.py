"""A round's configuration from the paper's defaults, LoRA on request, and the tiny CPU base."""

import pytest

from modeltrain.services import DEFAULT_OPTIONS, TINY, round_config_build


@pytest.mark.parametrize(
    ("method", "rate", "accumulation", "epochs"),
    [("mcmdpo", 5e-7, 64, 2.0), ("dpo", 5e-7, 64, 1.0), ("sft", 2e-5, 128, 1.0)],
)
def test_rounds_default_to_the_papers_full_fine_tuning(method, rate, accumulation, epochs):
    config = round_config_build(method=method, base_model="/models/llava")
    assert config.use_lora is False and config.paradigm == "both"
    assert config.learning_rate == rate
    assert (config.gradient_accumulation_steps, config.num_epochs) == (accumulation, epochs)


def test_a_lora_round_gets_the_lora_rate_unless_it_names_one():
    lora = round_config_build(method="mcmdpo", base_model="m", hyperparameters={"use_lora": True})
    assert lora.use_lora and lora.learning_rate == 5e-6
    sft = round_config_build(method="sft", base_model="m", hyperparameters={"use_lora": True})
    assert sft.learning_rate == 2e-4
    named = round_config_build(
        method="mcmdpo", base_model="m", hyperparameters={"use_lora": True, "learning_rate": 1e-5}
    )
    assert named.learning_rate == 1e-5


def test_tiny_rounds_keep_their_cpu_settings():
    config = round_config_build(method="mcmdpo", base_model=TINY)
    assert config.use_lora and config.learning_rate == 3e-3 and config.max_steps == 12


def test_generation_defaults_are_the_references():
    assert DEFAULT_OPTIONS["num_beams"] == 3 and DEFAULT_OPTIONS["max_new_tokens"] == 256
