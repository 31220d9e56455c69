"""Reference log-probs of the 8 conditions, computed once and cached on disk.

The key hashes everything the numbers depend on: the records (texts and image bytes), the base
checkpoint (its files' names, sizes and mtimes, or a hub id), the negative spec (kind, step, seed),
the tokenisation limits and the compute dtype. Training reads the (records, 2, 2, 2) tensor, so the
reference model need not stay in memory; under DDP each process computes a strided share and the
shares are gathered.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from modeltrain.mcmdpo import flex
from modeltrain.mcmdpo.data import PreferenceDataset
from modeltrain.mcmdpo.packing import Layout, condition_logps, packed_layout


def model_fingerprint(base_model: str) -> str:
    """Identify a checkpoint cheaply: file names/sizes/mtimes for a folder, the id for a hub model."""
    path = Path(base_model)
    if not path.is_dir():
        return f"hub:{base_model}"
    parts = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        parts.append(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return "dir:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def dataset_fingerprint(dataset: PreferenceDataset) -> str:
    digest = hashlib.sha256()
    seen_images: dict[str, str] = {}
    for record in dataset.records:
        if record.image_path not in seen_images:
            seen_images[record.image_path] = hashlib.sha256(
                Path(record.image_path).read_bytes()
            ).hexdigest()
        row = [
            record.context,
            record.header,
            record.chosen,
            record.rejected,
            seen_images[record.image_path],
        ]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def cache_key(dataset: PreferenceDataset, base_model: str, dtype: torch.dtype) -> str:
    payload = {
        "records": dataset_fingerprint(dataset),
        "model": model_fingerprint(base_model),
        "negatives": dataset.negatives.key(),
        "style": [dataset.style.template, dataset.style.pad_to_square],
        "limits": [dataset.max_response_tokens, dataset.max_context_chars],
        "dtype": str(dtype),
        # 2: reference log-probs under flex_attention were computed with a mask that masked
        # nothing; caches written before the fix must not be read.
        "version": 2,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@torch.no_grad()
def dataset_condition_logps(
    model,
    dataset: PreferenceDataset,
    *,
    batch_size: int = 4,
    indices: list[int] | None = None,
    autocast_dtype: torch.dtype | None = None,
    attention_mask_for: Callable[[Layout], object] | None = None,
) -> torch.Tensor:
    """(len(indices), 2, 2, 2) log-probs of `model` (in eval mode for the call) on `dataset`.

    Used for the reference cache and, with the trained policy, for evaluating margins.
    `attention_mask_for(layout)` gives the mask each batch runs with (the trainer passes its
    own `_attention_mask`); by default `flex.attention_mask_for` decides from the model, which
    is what the trainer does too, so a flex_attention model gets its BlockMask either way.
    """
    indices = list(range(len(dataset))) if indices is None else indices
    device = next(model.parameters()).device
    pad = dataset.processor.tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else nullcontext()
    )
    out = []
    try:
        for start in range(0, len(indices), batch_size):
            examples = [dataset[i] for i in indices[start : start + batch_size]]
            layout = packed_layout(examples, pad).to(device)
            mask = (
                attention_mask_for(layout)
                if attention_mask_for is not None
                else flex.attention_mask_for(model, layout)
            )
            with autocast:
                out.append(condition_logps(model, layout, attention_mask=mask).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 2, 2, 2)


def load_or_compute(
    model,
    dataset: PreferenceDataset,
    *,
    cache_dir: str | Path,
    base_model: str,
    dtype: torch.dtype,
    batch_size: int = 4,
    accelerator=None,
    attention_mask_for: Callable[[Layout], object] | None = None,
) -> tuple[torch.Tensor, Path, bool]:
    """Return (ref log-probs (N, 2, 2, 2), cache file, whether it was read from the cache).

    `attention_mask_for`: as in `dataset_condition_logps` (pass the trainer's `_attention_mask`).
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / f"ref-{cache_key(dataset, base_model, dtype)}.pt"
    if path.exists():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if cached.shape == (len(dataset), 2, 2, 2):
            return cached, path, True
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = list(range(rank, len(dataset), world))
    autocast_dtype = dtype if dtype != torch.float32 else None
    logps = dataset_condition_logps(
        model,
        dataset,
        batch_size=batch_size,
        indices=mine,
        autocast_dtype=autocast_dtype,
        attention_mask_for=attention_mask_for,
    )
    if world > 1:
        import torch.distributed as dist

        shares: list = [None] * world
        dist.all_gather_object(shares, (mine, logps))
        full = torch.zeros(len(dataset), 2, 2, 2)
        for share_indices, share_logps in shares:
            full[share_indices] = share_logps
        logps = full
    if rank == 0:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(logps, tmp)
        os.replace(tmp, path)  # readers never see a half-written cache
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return logps, path, False
