"""flex_attention block masks for packed rows (CUDA only; CPU runs use SDPA with the dense mask).

Imported lazily by the trainer when `attention="flex"`, so CPU code never touches
torch.nn.attention.flex_attention. The model must run with attn_implementation="flex_attention".
"""

from __future__ import annotations

import torch


def flex_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        from torch.nn.attention.flex_attention import create_block_mask  # noqa: F401
    except ImportError:
        return False
    return True


def block_mask_for(visible: torch.Tensor):
    """BlockMask equivalent to a dense (rows, 1, length, length) boolean visibility mask.

    Blocks that are entirely masked (most of them: branches never see each other) are skipped by
    the kernel, which is where the saving over dense SDPA comes from.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    if not visible.is_cuda:
        raise RuntimeError("flex_attention block masks are only built on CUDA")
    dense = visible[:, 0]
    rows, length, _ = dense.shape

    def mask_mod(b, h, q, kv):
        return dense[b, q, kv]

    return create_block_mask(
        mask_mod, B=rows, H=None, Q_LEN=length, KV_LEN=length, device=visible.device
    )
