"""One adapter per vision-language family, looked up by the model config's `model_type`.

Everything that differs between families (image-input keys, where image tokens sit, attention
semantics, position ids) lives in an adapter (see base.py for the interface); the rest of the
package is family-blind. A model whose family has no adapter is refused with `UnsupportedModel`,
never trained silently wrong. Adding a family: one module with a `FamilyAdapter` subclass, listed
in ADAPTERS, and its tiny config in tiny_families.FAMILIES (the family matrix test runs it).
"""

from __future__ import annotations

from modeltrain.mcmdpo.families.base import FamilyAdapter
from modeltrain.mcmdpo.families.gemma import Gemma3, PaliGemma
from modeltrain.mcmdpo.families.idefics import Idefics3
from modeltrain.mcmdpo.families.llava import Llava, LlavaNext, LlavaOnevision
from modeltrain.mcmdpo.families.mllama import Mllama
from modeltrain.mcmdpo.families.qwen import QwenVL


class UnsupportedModel(ValueError):
    """The model's family has no adapter, or the adapter refuses this model (message says why)."""


ADAPTERS: tuple[type[FamilyAdapter], ...] = (
    Llava,
    LlavaNext,
    LlavaOnevision,
    QwenVL,
    Idefics3,
    Gemma3,
    PaliGemma,
    Mllama,
)
REGISTRY: dict[str, type[FamilyAdapter]] = {t: a for a in ADAPTERS for t in a.model_types}


def adapter_for(config) -> FamilyAdapter:
    """The adapter for a transformers config (or anything with `.config`); raises UnsupportedModel."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    cls = REGISTRY.get(model_type)
    if cls is None:
        supported = ", ".join(sorted(t for t in REGISTRY if t != "mllama"))
        raise UnsupportedModel(
            f"no AltPref adapter for model_type {model_type!r}: image inputs, image-token layout, "
            f"attention and positions of this family are unknown, so training could compute the "
            f"wrong quantity. Supported: {supported}."
        )
    adapter = cls(config)
    adapter.check()
    return adapter


def adapter_for_processor(processor) -> FamilyAdapter:
    """The adapter for data preparation, from the processor's class (no model config needed)."""
    name = type(processor).__name__
    for cls in ADAPTERS:
        if name in cls.processor_classes:
            adapter = cls()
            adapter.check()
            return adapter
    raise UnsupportedModel(f"no AltPref adapter for the processor {name}")


def adapter_for_model(model) -> FamilyAdapter:
    """The adapter of a (possibly PEFT- or DDP-wrapped) model, cached on the model object."""
    inner = getattr(model, "module", model)
    cached = getattr(inner, "_altpref_adapter", None)
    if cached is None:
        cached = adapter_for(inner.config)
        inner._altpref_adapter = cached
    return cached


__all__ = [
    "ADAPTERS",
    "FamilyAdapter",
    "UnsupportedModel",
    "adapter_for",
    "adapter_for_model",
    "adapter_for_processor",
]
