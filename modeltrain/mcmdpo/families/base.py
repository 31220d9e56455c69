"""The family adapter interface, with the behaviour of the plain LLaVA layout as its defaults.

An adapter answers, for one family of vision-language models, the questions the family-blind
code asks:

- prompts and processing: `render_prompt`, `process` (flat or nested image lists);
- image inputs: which processor outputs travel with an image (`image_keys`), how one processor
  call's outputs split into per-image pieces (`split_images`) and how pieces from many records
  stack into one model call (`stack_images`);
- where an image's tokens sit in a prompt (`image_span`): from its first image token to its last,
  so tiles separated by row/column tags (Idefics3) are one span;
- attention semantics: `attention` is "causal", "image_bidirectional" (Gemma 3: an image's tokens
  see each other) or "prefix_lm" (PaliGemma: the whole prompt is bidirectional);
- positions: `position_ids` for a layout (None: the layout's own, which equal the unpacked
  sequences' 0-based positions) and `token_inputs`, per-token model inputs an unpacked batch needs
  (token_type_ids) so the model builds the family's own mask;
- how a corrupted image is made when its pixels are not a plain (channels, height, width) grid
  (`spatial_pixels`: crop and rotation then happen on the picture before processing).
"""

from __future__ import annotations

from typing import ClassVar

import torch

# Module names of vision encoders (LLaVA/Gemma/PaliGemma, Idefics3, Qwen-VL).
VISION_TOWERS = ("vision_tower", "vision_model", "visual")


class FamilyAdapter:
    """One family's answers; subclasses override what differs from LLaVA-1.5."""

    name: ClassVar[str] = "llava"
    model_types: ClassVar[tuple[str, ...]] = ("llava",)
    processor_classes: ClassVar[tuple[str, ...]] = ("LlavaProcessor",)
    image_keys: ClassVar[tuple[str, ...]] = ("pixel_values", "image_sizes")
    nested_images: ClassVar[bool] = False  # processor wants [[image], [image]] per prompt
    attention: ClassVar[str] = "causal"
    spatial_pixels: ClassVar[bool] = True  # pixel_values[i] is (channels, height, width)

    def __init__(self, config=None):
        # None when resolved from a processor alone (data preparation needs no model config).
        self.config = config

    def unused_parameters(self, model) -> set[str]:
        """Names of parameters the model never uses to write text (they would get no gradient).

        Training leaves them frozen: DDP would otherwise wait for their gradients, and a resumed
        FSDP run finds no optimizer state for them. Default: a vision tower's pooling head
        (SigLIP's), which image-text models never read, since they take the token sequence.
        """
        unused = set()
        for name, _ in model.named_parameters():
            parts = name.split(".")
            vision = [i for i, part in enumerate(parts) if part in VISION_TOWERS]
            if vision and "head" in parts[vision[0] :]:
                unused.add(name)
        return unused

    def check(self) -> None:
        """Raise UnsupportedModel when this model cannot be trained correctly (default: it can)."""

    # --- prompts and processing ----------------------------------------------------------------

    def image_token_id(self, processor=None) -> int:
        for key in ("image_token_id", "image_token_index"):
            value = getattr(self.config, key, None)
            if value is not None:
                return int(value)
        if getattr(processor, "image_token_id", None) is not None:
            return int(processor.image_token_id)
        token = getattr(processor, "image_token", None) or "<image>"
        return processor.tokenizer.convert_tokens_to_ids(token)

    def render_prompt(self, processor, question: str) -> str:
        """The prompt text for one image + question: the model's chat template, else LLaVA-1.5's."""
        if getattr(processor, "chat_template", None):
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
            ]
            return self._apply_chat_template(processor, messages)
        image_token = getattr(processor, "image_token", None) or "<image>"
        return f"USER: {image_token}\n{question} ASSISTANT:"

    def _apply_chat_template(self, processor, messages) -> str:
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def process(self, processor, images: list, texts: list[str], **kwargs):
        """Run the processor on one image per prompt (prompts already rendered)."""
        if self.nested_images:
            images = [[image] for image in images]
        return processor(
            images=images,
            text=texts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,  # the rendered prompt already carries any BOS (trl does too)
            **kwargs,
        )

    # --- image inputs ----------------------------------------------------------------------------

    def split_images(self, outputs) -> list[dict[str, torch.Tensor]]:
        """Per-image pieces of a processor call's image outputs (one image per prompt)."""
        count = len(outputs["input_ids"])  # a tensor's rows or a list of rows: one per prompt
        keys = [k for k in self.image_keys if k in outputs]
        return [{k: outputs[k][i : i + 1] for k in keys} for i in range(count)]

    def corrupt_pixels(self, pixels: torch.Tensor, kind, generator, *, noise_step: int):
        """The losing image's pixel tensor made from the own image's (noise, blank, crop, rotate)."""
        from modeltrain.mcmdpo.negatives import corrupt_image

        return corrupt_image(pixels, kind, generator, noise_step=noise_step)

    # --- token layout ----------------------------------------------------------------------------

    def image_span(self, row: list[int], image_token_id: int) -> tuple[int, int]:
        """[start, end) of the image's tokens in one prompt: first to last image token."""
        positions = [i for i, token in enumerate(row) if token == image_token_id]
        if not positions:
            raise ValueError("the rendered prompt has no image token")
        return positions[0], positions[-1] + 1

    # --- model inputs ----------------------------------------------------------------------------

    def position_ids(self, model, layout) -> torch.Tensor | None:
        """Position ids to pass for `layout`; None means the layout's own (or the model's)."""
        return layout.position_ids

    def token_inputs(self, layout) -> dict[str, torch.Tensor]:
        """Per-token inputs of an unpacked (padded) layout, e.g. token_type_ids."""
        return {}

    def trl_processor(self, processor):
        """The processing class handed to trl's trainers (SFT, DPO)."""
        return processor

    def packed_attention(self, visible: torch.Tensor, layout):
        """The attention mask to pass for a packed layout's (rows, 1, L, L) visibility."""
        return visible
