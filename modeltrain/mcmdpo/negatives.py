"""Losing conditions for MCM-DPO: corrupted images and swapped contexts, deterministic per record.

Every random choice draws from a torch.Generator seeded from (seed, record index, epoch, purpose),
so the same record gets the same negatives in every process and every run; that is what lets the
reference log-probs be computed once and cached.

Pixel tensors are the processor's normalised output, shape (..., channels, height, width); the
leading dimensions (e.g. LLaVA-Next's image patches) are corrupted alike.
"""

from __future__ import annotations

import hashlib
import math
from enum import StrEnum

import torch
import torch.nn.functional as F

NUM_DIFFUSION_STEPS = 1000
BETA_MIN, BETA_MAX = 1e-5, 5e-3


class ImageNegative(StrEnum):
    NOISE = "noise"
    BLANK = "blank"
    CROP = "crop"
    ROTATE = "rotate"
    SWAP = "swap"  # another record's image


def record_generator(seed: int, index: int, epoch: int = 0, purpose: str = "") -> torch.Generator:
    """A CPU generator whose state depends only on its arguments (not on Python's hash seed)."""
    digest = hashlib.sha256(f"{seed}:{index}:{epoch}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def diffusion_alphas_cumprod(steps: int = NUM_DIFFUSION_STEPS) -> torch.Tensor:
    """ᾱ_t for the sigmoid beta schedule: betas = sigmoid(linspace(-6, 6)) scaled into [1e-5, 5e-3]."""
    betas = (
        torch.sigmoid(torch.linspace(-6, 6, steps, dtype=torch.float64)) * (BETA_MAX - BETA_MIN)
        + BETA_MIN
    )
    return torch.cumprod(1.0 - betas, dim=0)


def add_diffusion_noise(
    pixels: torch.Tensor, step: int, generator: torch.Generator
) -> torch.Tensor:
    """x_t = sqrt(ᾱ_t) x + sqrt(1 - ᾱ_t) ε, with t counted from 0 as in the reference code."""
    alpha_bar = diffusion_alphas_cumprod()[step].item()
    noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float32).to(pixels.dtype)
    return math.sqrt(alpha_bar) * pixels + math.sqrt(1.0 - alpha_bar) * noise


def random_crop(
    pixels: torch.Tensor, generator: torch.Generator, min_scale: float = 0.3, max_scale: float = 0.6
) -> torch.Tensor:
    """Crop a random window (side min_scale..max_scale of the image) and resize it back."""
    height, width = pixels.shape[-2:]
    scale = min_scale + (max_scale - min_scale) * torch.rand((), generator=generator).item()
    crop_h, crop_w = max(1, round(height * scale)), max(1, round(width * scale))
    top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
    left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
    window = pixels[..., top : top + crop_h, left : left + crop_w]
    flat = window.reshape(-1, *window.shape[-3:]).float()
    resized = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    return resized.reshape(pixels.shape).to(pixels.dtype)


def random_rotation(
    pixels: torch.Tensor, generator: torch.Generator, min_deg: float = 10.0, max_deg: float = 80.0
) -> torch.Tensor:
    """Rotate by 10-80 degrees either way; uncovered corners are 0 (the normalised mean)."""
    degrees = min_deg + (max_deg - min_deg) * torch.rand((), generator=generator).item()
    if torch.rand((), generator=generator).item() < 0.5:
        degrees = -degrees
    angle = math.radians(degrees)
    flat = pixels.reshape(-1, *pixels.shape[-3:]).float()
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=flat.dtype).expand(
        flat.shape[0], 2, 3
    )
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    rotated = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated.reshape(pixels.shape).to(pixels.dtype)


def corrupt_image(
    pixels: torch.Tensor,
    kind: ImageNegative | str,
    generator: torch.Generator,
    *,
    noise_step: int = 700,
    swap_pixels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the losing image for `pixels` (same shape unless `kind` is swap)."""
    kind = ImageNegative(kind)
    if kind is ImageNegative.NOISE:
        return add_diffusion_noise(pixels, noise_step, generator)
    if kind is ImageNegative.BLANK:
        return torch.zeros_like(pixels)
    if kind is ImageNegative.CROP:
        return random_crop(pixels, generator)
    if kind is ImageNegative.ROTATE:
        return random_rotation(pixels, generator)
    if swap_pixels is None:
        raise ValueError("an image swap needs the other record's pixels")
    return swap_pixels


def other_index(index: int, count: int, seed: int, epoch: int = 0, purpose: str = "context") -> int:
    """Another record's index (never `index` itself when there are at least two records)."""
    if count < 2:
        raise ValueError("swapping contexts or images needs at least two records")
    generator = record_generator(seed, index, epoch, purpose)
    offset = int(torch.randint(1, count, (), generator=generator))
    return (index + offset) % count


def swapped_context_index(
    index: int, contexts: list[str], seed: int, epoch: int = 0, max_tries: int = 8
) -> int:
    """Index of another record whose context differs from this one's (duplicates are skipped)."""
    count = len(contexts)
    for attempt in range(max_tries):
        other = other_index(index, count, seed, epoch, purpose=f"context:{attempt}")
        if contexts[other] != contexts[index]:
            return other
    return other  # every draw collided: all contexts are equal, nothing better exists


def corrupt_picture(image, kind: ImageNegative | str, generator: torch.Generator):
    """Crop or rotate a PIL picture as `corrupt_image` does a pixel tensor, same size.

    For families whose pixel tensors are patch-flattened or tiled (Qwen-VL, Idefics3, LLaVA-Next),
    a spatial corruption of the tensor would mix unrelated patches; the picture is corrupted
    instead, then processed like the original, so the corrupted image keeps its token layout.
    """
    from PIL import Image

    kind = ImageNegative(kind)
    if kind not in (ImageNegative.CROP, ImageNegative.ROTATE):
        raise ValueError(f"only crop and rotation apply to a picture, not {kind.value}")
    array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    pixels = array.view(image.height, image.width, 3).permute(2, 0, 1)[None].float() / 255
    changed = corrupt_image(pixels, kind, generator)
    out = (changed[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.frombytes("RGB", image.size, out.numpy().tobytes())
