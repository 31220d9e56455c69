"""Configuration defaults: the paper's full fine-tuning, LoRA with its own learning rate."""

import pytest

from modeltrain.mcmdpo.config import PARADIGMS, MCMDPOConfig


def test_default_is_the_papers_full_fine_tuning():
    config = MCMDPOConfig()
    assert config.use_lora is False and config.paradigm == "both"
    assert PARADIGMS[config.paradigm] == (True, True)  # vision encoder trained in both stages
    assert config.train_vision_encoder and config.train_projector and config.train_language_model
    assert config.learning_rate == 5e-7
    assert MCMDPOConfig(method="dpo").learning_rate == 5e-7
    assert MCMDPOConfig(method="sft").learning_rate == 2e-5


@pytest.mark.parametrize(("method", "rate"), [("mcmdpo", 5e-6), ("dpo", 5e-6), ("sft", 2e-4)])
def test_lora_gets_its_own_learning_rate(method, rate):
    assert MCMDPOConfig(method=method, use_lora=True).learning_rate == rate


def test_an_explicit_learning_rate_always_wins():
    assert MCMDPOConfig(use_lora=True, learning_rate=5e-7).learning_rate == 5e-7
    assert MCMDPOConfig(method="sft", learning_rate=1e-3).learning_rate == 1e-3
    # Stored and reloaded: the rate that trained is the rate that is read back.
    stored = MCMDPOConfig(use_lora=True).to_dict()
    assert MCMDPOConfig.from_dict(stored).learning_rate == 5e-6


def test_overrides_rederive_a_default_rate_but_keep_a_chosen_one():
    assert MCMDPOConfig().with_overrides(use_lora=True).learning_rate == 5e-6
    assert MCMDPOConfig().with_overrides(method="sft").learning_rate == 2e-5
    chosen = MCMDPOConfig(learning_rate=1e-6)
    assert chosen.with_overrides(use_lora=True).learning_rate == 1e-6


def test_generation_defaults_are_the_references():
    import inspect

    from modeltrain.mcmdpo.generate import generate_alt_texts

    parameters = inspect.signature(generate_alt_texts).parameters
    assert parameters["num_beams"].default == 3 and parameters["max_new_tokens"].default == 256


@pytest.mark.parametrize("scale", [0.0, -0.1, float("nan")])
def test_vision_lr_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match="vision_lr_scale must be > 0"):
        MCMDPOConfig(vision_lr_scale=scale)
    assert MCMDPOConfig().vision_lr_scale == 1.0  # the paper's one rate for every weight
