"""Batched alt-text generation for (image, context) pairs with beam search, and loading a trained round."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from modeltrain.mcmdpo.data import PromptStyle, load_image
from modeltrain.mcmdpo.families import adapter_for_model
from modeltrain.mcmdpo.formats import DEFAULT_HEADER, format_question


def load_trained(folder: str | Path, dtype: torch.dtype | None = None):
    """(model, processor) from a round's final folder: a full model, or a LoRA adapter on its base."""
    from transformers import AutoModelForImageTextToText

    from modeltrain.mcmdpo.processors import load_processor

    folder = Path(folder)
    dtype = dtype or (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    processor = load_processor(str(folder))
    adapter = folder / "adapter_config.json"
    if adapter.exists():
        from peft import PeftModel

        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        model = AutoModelForImageTextToText.from_pretrained(base, dtype=dtype)
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    else:
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
    return model.eval(), processor


def trained_style(folder: str | Path) -> PromptStyle:
    """The prompt style a round's model was trained with (its altpref_training.json), else the default."""
    record = Path(folder) / "altpref_training.json"
    if not record.exists():
        return PromptStyle()
    config = json.loads(record.read_text()).get("config", {})
    return PromptStyle(
        template=config.get("prompt_template", "model"),
        pad_to_square=bool(config.get("pad_to_square", False)),
    )


@torch.no_grad()
def generate_alt_texts(
    model,
    processor,
    items: Sequence[tuple[Image.Image | str | Path, str]],
    *,
    num_beams: int = 3,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    header: str = DEFAULT_HEADER,
    style: PromptStyle | None = None,
) -> list[str]:
    """Alt-text for each (image or image path, context), in order.

    Prompts are left-padded so every row's generation starts right after its own prompt; beam
    search with 3 beams and up to 256 new tokens are the reference implementation's settings.
    """
    device = next(model.parameters()).device
    tokenizer = processor.tokenizer
    adapter = adapter_for_model(model)
    style = style or PromptStyle()
    outputs: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = [
            style.picture(image if isinstance(image, Image.Image) else load_image(image), processor)
            for image, _ in chunk
        ]
        prompts = [
            style.prompt(processor, format_question(context, header), adapter)
            for _, context in chunk
        ]
        inputs = adapter.process(processor, images, prompts, padding_side="left").to(device)
        generated = model.generate(
            **inputs,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        outputs.extend(
            t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        )
    return outputs
