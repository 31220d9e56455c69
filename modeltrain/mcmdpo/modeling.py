"""Load any image-text-to-text model through the Auto classes and choose what it trains.

Parameters are grouped by name into vision encoder, projector and language model, which covers
the transformers VLM families trl trains (LLaVA, LLaVA-Next, Idefics, Qwen-VL, Gemma 3, ...).
LoRA goes on the language model's linear layers (and the vision encoder's when that is trained);
a trained projector is saved in full alongside the adapter.
"""

from __future__ import annotations

import contextlib
import re

import torch

from modeltrain.mcmdpo.config import MCMDPOConfig

VISION_NAMES = ("vision_tower", "vision_model", "visual", "image_encoder", "vision_encoder")
PROJECTOR_NAMES = (
    "multi_modal_projector",
    "mm_projector",
    "connector",
    "projector",
    "merger",
    "deepstack_merger_list",  # Qwen3-VL's per-layer mergers: projectors, inside `visual`
)
LINEAR_NAMES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "out_proj",
    "fc1",
    "fc2",
)


def default_dtype(config: MCMDPOConfig) -> torch.dtype:
    bf16 = torch.cuda.is_available() if config.bf16 is None else config.bf16
    return torch.bfloat16 if bf16 else torch.float32


def load_model_and_processor(base_model: str, dtype: torch.dtype = torch.float32):
    """Model + processor from a local folder or hub id (offline when HF_HUB_OFFLINE=1).

    A model whose family has no adapter (or one its adapter refuses) raises UnsupportedModel
    before the weights are loaded, so a round fails at once with the reason.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    from modeltrain.mcmdpo.families import adapter_for
    from modeltrain.mcmdpo.processors import load_processor

    adapter_for(AutoConfig.from_pretrained(base_model))
    processor = load_processor(base_model)
    model = AutoModelForImageTextToText.from_pretrained(
        base_model, dtype=dtype, attn_implementation="sdpa"
    )
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processor


def parameter_group(name: str) -> str:
    """'vision', 'projector' or 'language' for a parameter (or module) name."""
    parts = name.split(".")
    if any(p in PROJECTOR_NAMES for p in parts) and not any(
        p in ("language_model",) for p in parts
    ):
        # Qwen's merger sits inside `visual`: it is the projector, not the encoder.
        return "projector"
    if any(p in VISION_NAMES for p in parts):
        return "vision"
    return "language"


def _projector_module_names(model) -> list[str]:
    names = []
    for name, _ in model.named_modules():
        if name.split(".")[-1] in PROJECTOR_NAMES and parameter_group(name) == "projector":
            if not any(name.startswith(n + ".") for n in names):
                names.append(name)
    return names


def prepare_trainable(model, config: MCMDPOConfig):
    """Freeze/unfreeze per the config; wrap in a LoRA PeftModel when `use_lora`. Returns the model."""
    train = {
        "vision": config.train_vision_encoder,
        "projector": config.train_projector,
        "language": config.train_language_model,
    }
    if not any(train.values()):
        raise ValueError("nothing to train: enable the vision encoder, projector or language model")
    from modeltrain.mcmdpo.families import adapter_for

    # Parameters the family never uses stay frozen (see FamilyAdapter.unused_parameters).
    unused = adapter_for(model.config).unused_parameters(model)
    if not config.use_lora:
        for name, param in model.named_parameters():
            param.requires_grad_(train[parameter_group(name)] and name not in unused)
        return model

    from peft import LoraConfig, get_peft_model

    groups = [g for g in ("vision", "language") if train[g]]
    pattern = None
    if groups:
        # Only linear layers of the chosen groups get LoRA; `language` excludes the vision tower.
        linear = "|".join(LINEAR_NAMES)
        targets = [
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
            and name.split(".")[-1] in LINEAR_NAMES
            and parameter_group(name) in groups
            and f"{name}.weight" not in unused
        ]
        if not targets:
            raise ValueError(f"no LoRA target ({linear}) found in the trained parts {groups}")
        pattern = "^(" + "|".join(re.escape(t) for t in targets) + ")$"
    modules_to_save = _projector_module_names(model) if train["projector"] else None
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=pattern or [],
        modules_to_save=modules_to_save,
        bias="none",
    )
    return get_peft_model(model, lora)


def reference_context(model):
    """Context in which `model` computes the reference policy: adapters off for a PEFT model."""
    unwrapped = getattr(model, "module", model)
    if hasattr(unwrapped, "disable_adapter"):
        return unwrapped.disable_adapter()
    return contextlib.nullcontext()


def is_peft(model) -> bool:
    return hasattr(getattr(model, "module", model), "disable_adapter")
