"""Mllama (Llama 3.2 Vision): refused before training, with the reason."""

from __future__ import annotations

from modeltrain.mcmdpo.families.base import FamilyAdapter


class Mllama(FamilyAdapter):
    name = "mllama"
    model_types = ("mllama",)
    processor_classes = ("MllamaProcessor",)

    def check(self) -> None:
        from modeltrain.mcmdpo.families import UnsupportedModel

        raise UnsupportedModel(
            "Mllama (Llama 3.2 Vision) is not supported: it reads the image through cross-attention "
            "layers instead of image tokens in the sequence, so MCM-DPO's shared image spans and "
            "per-condition image inputs do not apply to it. Use a LLaVA, Qwen-VL, Idefics3/SmolVLM, "
            "Gemma 3 or PaliGemma model."
        )
