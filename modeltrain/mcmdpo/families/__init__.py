"""One adapter per vision-language family, looked up by the model config's `model_type`.

Everything that differs between families (image-input keys, where image tokens sit, attention
semantics, position ids) lives in an adapter; the rest of the package is family-blind. A model
whose family has no adapter is refused with `UnsupportedModel`, never trained silently wrong.
(Work in progress: the full registry lands with the family matrix.)
"""

from __future__ import annotations


class UnsupportedModel(ValueError):
    """The model's family has no adapter, or the adapter refuses this model (message says why)."""


SUPPORTED = ("llava",)


def adapter_for(config):
    """The adapter for a transformers config (or a model's `.config`); raises UnsupportedModel."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise UnsupportedModel(
            f"no AltPref adapter for model_type {model_type!r}; supported: {', '.join(SUPPORTED)}"
        )
    return model_type
