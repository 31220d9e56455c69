"""LLaVA-1.5, LLaVA-Next and LLaVA-OneVision: one contiguous run of image tokens, causal attention."""

from __future__ import annotations

import torch

from modeltrain.mcmdpo.families.base import FamilyAdapter


class Llava(FamilyAdapter):
    name = "llava"
    model_types = ("llava",)
    processor_classes = ("LlavaProcessor",)
    image_keys = ("pixel_values",)


class LlavaNext(FamilyAdapter):
    """Any-resolution patches: pixel_values (images, patches, C, H, W) and image_sizes."""

    name = "llava_next"
    model_types = ("llava_next",)
    processor_classes = ("LlavaNextProcessor",)
    image_keys = ("pixel_values", "image_sizes")
    spatial_pixels = False  # a stack of patches: crop and rotate the picture instead


class LlavaOnevision(LlavaNext):
    name = "llava_onevision"
    model_types = ("llava_onevision",)
    processor_classes = ("LlavaOnevisionProcessor",)
    image_keys = ("pixel_values", "image_sizes", "batch_num_images")

    def split_images(self, outputs):
        pieces = super().split_images(outputs)
        # OneVision lays out an image with several per sample as a multi-image (no any-resolution
        # patches). A packed row holds two images of different conditions, each a single-image
        # sample, so every image says "one image" whatever row it lands in.
        for piece in pieces:
            piece["batch_num_images"] = torch.ones(1, dtype=torch.long)
        return pieces
