"""The reference's presentation for the paper's LLaVA: vicuna_v1 template and pad-to-square pictures."""

import json

from PIL import Image

from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.data import PreferenceDataset, PromptStyle
from modeltrain.mcmdpo.formats import read_records
from modeltrain.mcmdpo.generate import trained_style
from modeltrain.mcmdpo.run import run_training


def test_pad_to_square_centres_the_picture_on_the_processors_mean_colour(tiny_model_and_processor):
    _, processor = tiny_model_and_processor
    wide = Image.new("RGB", (48, 32), (255, 0, 0))
    square = PromptStyle(pad_to_square=True).picture(wide, processor)
    assert square.size == (48, 48)
    mean = tuple(round(255 * c) for c in processor.image_processor.image_mean)
    assert square.getpixel((0, 0)) == mean and square.getpixel((47, 47)) == mean
    assert square.getpixel((24, 24)) == (255, 0, 0)  # the picture itself, centred
    assert PromptStyle().picture(wide, processor) is wide  # off by default


def test_vicuna_v1_template_reaches_the_tokens(tiny_model_and_processor, synthetic_snapshot):
    _, processor = tiny_model_and_processor
    records = read_records(synthetic_snapshot)
    plain = PreferenceDataset(records, processor)[0]
    vicuna = PreferenceDataset(records, processor, style=PromptStyle(template="vicuna_v1"))[0]
    assert len(vicuna.prefix_ids) > len(plain.prefix_ids)  # the system sentence comes first
    assert vicuna.image_ids == plain.image_ids and vicuna.response_ids == plain.response_ids


def test_a_round_in_the_reference_presentation_trains_and_remembers_it(
    tiny_base, synthetic_snapshot, tmp_path
):
    for method in ("sft", "mcmdpo"):
        config = MCMDPOConfig(
            base_model=str(tiny_base), method=method, use_lora=False, max_steps=1, save_steps=10,
            per_device_batch_size=2, prompt_template="vicuna_v1", pad_to_square=True,
        )  # fmt: skip
        result = run_training(config, synthetic_snapshot, tmp_path / method)
        assert result.global_step == 1
        saved = json.loads((result.final_dir / "altpref_training.json").read_text())["config"]
        assert saved["prompt_template"] == "vicuna_v1"
        assert trained_style(result.final_dir) == PromptStyle("vicuna_v1", pad_to_square=True)
