"""LLaVA-1.5, LLaVA-Next and LLaVA-OneVision: one contiguous run of image tokens, causal attention."""

from __future__ import annotations

import re

import torch

from modeltrain.mcmdpo.families.base import FamilyAdapter


class _LlavaFeatures(FamilyAdapter):
    """LLaVA reads one hidden layer of the vision tower (`vision_feature_layer`, -2 in LLaVA-1.5):
    the layers above it and the tower's final layer norm never reach the language model."""

    def unused_parameters(self, model) -> set[str]:
        unused = super().unused_parameters(model)
        layer = getattr(self.config, "vision_feature_layer", -1)
        if not isinstance(layer, int):
            return unused  # several layers are read: only the final norm is certainly unused
        depth = self.config.vision_config.num_hidden_layers
        read = layer % (depth + 1)  # hidden_states[read] is the output of `read` layers
        pattern = re.compile(r"vision_tower\..*(post_layernorm|encoder\.layers\.(\d+))\.")
        for name, _ in model.named_parameters():
            match = pattern.search(name)
            if match and (match.group(2) is None or int(match.group(2)) >= read):
                unused.add(name)
        return unused


class Llava(_LlavaFeatures):
    name = "llava"
    model_types = ("llava",)
    processor_classes = ("LlavaProcessor",)
    image_keys = ("pixel_values",)


class LlavaNext(_LlavaFeatures):
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
