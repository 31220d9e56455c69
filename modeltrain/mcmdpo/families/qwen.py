"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL: patch-flattened pixels and 3-D M-RoPE positions.

pixel_values is (sum of every image's patches, patch features) with image_grid_thw (images, 3)
saying how many patches each image has; positions are the model's own rope index (temporal,
height, width) computed on each unpacked sequence and, for a packed row, gathered token by token
from the branch of the prefix tree the token belongs to.
"""

from __future__ import annotations

import torch

from modeltrain.mcmdpo.families.base import FamilyAdapter


class QwenVL(FamilyAdapter):
    name = "qwen_vl"
    model_types = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
    processor_classes = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor")
    image_keys = ("pixel_values", "image_grid_thw")
    spatial_pixels = False

    def split_images(self, outputs):
        grids = outputs["image_grid_thw"]
        counts = grids.prod(-1).tolist()
        patches = torch.split(outputs["pixel_values"], counts)
        return [
            {"pixel_values": p, "image_grid_thw": grids[i : i + 1]} for i, p in enumerate(patches)
        ]

    def position_ids(self, model, layout) -> torch.Tensor:
        rope = self._rope = getattr(self, "_rope", None) or _rope_module(model)  # found once
        image_token = self.image_token_id()
        grids = layout.image_inputs["image_grid_thw"]
        if layout.attention_mask.dim() == 2:  # unpacked: one image per row, rows in image order
            ids, mask, row_grids = layout.input_ids, layout.attention_mask, grids
        else:
            ids, mask, row_grids = layout.path_ids, layout.path_mask, grids[layout.path_image]
        positions, _ = rope.get_rope_index(
            ids,
            mm_token_type_ids=(ids == image_token).int(),
            image_grid_thw=row_grids,
            attention_mask=mask,
        )
        if layout.attention_mask.dim() == 2:
            return positions
        # a packed token's offset in its branch is its (0-based, per-branch) position id
        return positions[:, layout.token_path, layout.position_ids]


def _rope_module(model):
    for module in model.modules():
        if hasattr(module, "get_rope_index"):
            return module
    raise ValueError("a Qwen-VL model without get_rope_index: this transformers version differs")
