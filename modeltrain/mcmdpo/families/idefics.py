"""Idefics3 and SmolVLM with image splitting: tiles separated by row/column tags, then a global view.

The image's tokens are not one run (`<fake_token_around_image><row_1_col_1><image>...`); its span
runs from the first image token to the last, tags included, which is the same for an image and its
corrupted copy. pixel_values is (images, tiles, C, H, W) with a pixel_attention_mask; the
processor takes one list of images per prompt.
"""

from __future__ import annotations

import torch

from modeltrain.mcmdpo.families.base import FamilyAdapter


class Idefics3(FamilyAdapter):
    name = "idefics3"
    model_types = ("idefics3", "smolvlm")
    processor_classes = ("Idefics3Processor", "SmolVLMProcessor")
    image_keys = ("pixel_values", "pixel_attention_mask")
    nested_images = True
    spatial_pixels = False  # tiles: crop and rotate the picture instead

    def corrupt_pixels(self, pixels, kind, generator, *, noise_step):
        from modeltrain.mcmdpo.negatives import ImageNegative

        if ImageNegative(kind) is ImageNegative.BLANK:
            # Idefics3 takes an all-zero tile for padding and drops it, which would leave the
            # blank image's tokens without features; 1e-6 is blank to any measurable precision.
            return torch.full_like(pixels, 1e-6)
        return super().corrupt_pixels(pixels, kind, generator, noise_step=noise_step)

    def _apply_chat_template(self, processor, messages) -> str:
        from transformers.processing_utils import ProcessorMixin

        # SmolVLM's own override reads video defaults from the video processor, which AltPref
        # never builds without torchvision; the base method renders images the same way.
        return ProcessorMixin.apply_chat_template(
            processor, messages, add_generation_prompt=True, tokenize=False
        )
