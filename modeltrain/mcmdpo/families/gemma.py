"""Gemma 3 and PaliGemma: attention that is not plain causal.

Gemma 3: an image's tokens attend to each other bidirectionally (token_type_ids mark them), and
some layers use a sliding window. PaliGemma: prefix-LM, the whole prompt (image and text) is
bidirectional and only the response is causal; positions start at 1.

Unpacked rows pass token_type_ids so the model builds its own masks; packed rows carry the same
semantics in the visibility mask the packing builds (see packing.py), plus the sliding window.
"""

from __future__ import annotations

import copy

import torch

from modeltrain.mcmdpo.families.base import FamilyAdapter


class Gemma3(FamilyAdapter):
    name = "gemma3"
    model_types = ("gemma3",)
    processor_classes = ("Gemma3Processor",)
    image_keys = ("pixel_values",)
    nested_images = True
    attention = "image_bidirectional"

    def image_token_id(self, processor=None) -> int:
        if self.config is not None:
            return int(self.config.image_token_id)
        # Gemma3Processor.image_token is the begin-of-image marker; the run is the soft token.
        tokenizer = processor.tokenizer
        return tokenizer.convert_tokens_to_ids(tokenizer.image_token)

    def token_inputs(self, layout):
        return {"token_type_ids": (layout.input_ids == self.image_token_id()).long()}

    def packed_attention(self, visible, layout):
        window = getattr(self.config.get_text_config(), "sliding_window", None)
        if not window:
            return visible
        positions = layout.position_ids  # each token's position in its own unpacked sequence
        distance = positions[:, None, :, None] - positions[:, None, None, :]
        return {"full_attention": visible, "sliding_attention": visible & (distance < window)}


class PaliGemma(FamilyAdapter):
    name = "paligemma"
    model_types = ("paligemma",)
    processor_classes = ("PaliGemmaProcessor",)
    image_keys = ("pixel_values",)
    attention = "prefix_lm"
    nested_images = True

    def render_prompt(self, processor, question: str) -> str:
        # PaliGemma has no chat template: the prompt is the image placeholder then the text; the
        # processor expands the placeholder and puts BOS after the image tokens.
        return f"{processor.image_token}{question}"

    def process(self, processor, images, texts, **kwargs):
        outputs = super().process(processor, images, texts, **kwargs)
        outputs.pop("labels", None)  # built by the processor for its own suffix convention
        return outputs

    def token_inputs(self, layout):
        return {"token_type_ids": layout.response_mask.long()}

    def trl_processor(self, processor):
        """trl tokenises completions with a text-only processor call, which PaliGemma refuses.

        The copy answers such a call with the tokenizer and token_type_ids of 1 (suffix), so trl's
        collator joins prompt (0, bidirectional) and completion (1, causal) exactly as PaliGemma's
        prefix-LM training expects.
        """
        base = type(processor)

        def call(self, images=None, text=None, **kwargs):
            if images is not None:
                encoded = base.__call__(self, images=images, text=text, **kwargs)
                encoded.pop("labels", None)  # trl builds its own from completion_mask
                return encoded
            encoded = self.tokenizer(text, **kwargs)
            encoded["token_type_ids"] = torch.ones_like(encoded["attention_mask"])
            return encoded

        wrapped = copy.copy(processor)
        wrapped.__class__ = type(base.__name__, (base,), {"__call__": call})
        return wrapped

    def position_ids(self, model, layout):
        if layout.position_ids is None:
            return None
        return layout.position_ids + 1  # PaliGemma counts positions from 1
