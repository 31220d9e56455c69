"""Which attention mask a packed layout is run with, and flex_attention block masks for it.

A packed layout carries a dense (rows, 1, length, length) boolean visibility mask. SDPA and
eager attention read it as a mask. transformers' flex_attention path does not: it ADDS a tensor
mask to the scores (+1 / +0), which masks nothing, so a model switched to flex_attention must get
a BlockMask instead. `attention_mask_for` is the one place that decides, from the model itself,
and both the trainer's loss and the reference log-probs (refcache) call it, so the reference is
always computed with the semantics training uses.

torch.nn.attention.flex_attention is imported only when a model runs flex_attention. It runs on
CUDA and (compiled for the CPU, slowly) on the CPU; training selects it only on CUDA.
"""

from __future__ import annotations

import torch


def flex_available() -> bool:
    """Whether training may select flex_attention (CUDA with torch's flex_attention)."""
    if not torch.cuda.is_available():
        return False
    try:
        from torch.nn.attention.flex_attention import create_block_mask  # noqa: F401
    except ImportError:
        return False
    return True


def uses_flex(model) -> bool:
    """Whether `model`'s language model runs transformers' flex_attention (DDP/PEFT unwrapped)."""
    model = getattr(model, "module", model)
    config = getattr(model, "config", None)
    if config is None:
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "_attn_implementation", None) == "flex_attention"


def attention_mask_for(model, layout):
    """The attention mask `condition_logps` hands `model` for `layout`, or None for the layout's
    own mask: a BlockMask when the model runs flex_attention on a packed (4-D) layout."""
    if layout.attention_mask.dim() != 4 or not uses_flex(model):
        return None
    return block_mask_for(layout.attention_mask)


def block_mask_for(visible: torch.Tensor):
    """BlockMask equivalent to a dense (rows, 1, length, length) boolean visibility mask.

    Blocks that are entirely masked (most of them: branches never see each other) are skipped by
    the kernel, which is where the saving over dense SDPA comes from.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    dense = visible[:, 0]
    rows, length, _ = dense.shape

    def mask_mod(b, h, q, kv):
        return dense[b, q, kv]

    return create_block_mask(
        mask_mod, B=rows, H=None, Q_LEN=length, KV_LEN=length, device=visible.device
    )
