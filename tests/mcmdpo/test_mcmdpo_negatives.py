"""Corrupted images and swapped contexts: the paper's noise schedule, variety, determinism."""

import math

import pytest
import torch

from modeltrain.mcmdpo.negatives import (
    ImageNegative,
    add_diffusion_noise,
    corrupt_image,
    diffusion_alphas_cumprod,
    other_index,
    random_rotation,
    record_generator,
    swapped_context_index,
)


def pixels(seed=0, shape=(1, 3, 32, 32)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_noise_schedule_matches_the_paper_formula():
    # betas = sigmoid(linspace(-6, 6, 1000)) * (5e-3 - 1e-5) + 1e-5, alpha_bar = prod(1 - beta)
    betas = [1 / (1 + math.exp(-(-6 + 12 * i / 999))) * (5e-3 - 1e-5) + 1e-5 for i in range(1000)]
    alpha_bar_700 = math.prod(1 - b for b in betas[:701])
    assert diffusion_alphas_cumprod()[700].item() == pytest.approx(alpha_bar_700, rel=1e-9)
    assert 0.0 < alpha_bar_700 < 0.5  # step 700 destroys most of the signal


def test_diffusion_noise_has_the_forward_process_statistics():
    x = pixels(shape=(1, 3, 224, 224))
    noisy = add_diffusion_noise(x, 700, torch.Generator().manual_seed(1))
    a = diffusion_alphas_cumprod()[700].item()
    residual = noisy - math.sqrt(a) * x
    assert residual.mean().item() == pytest.approx(0.0, abs=0.01)
    assert residual.std().item() == pytest.approx(math.sqrt(1 - a), rel=0.02)
    milder = add_diffusion_noise(x, 100, torch.Generator().manual_seed(1))
    assert (milder - x).abs().mean() < (noisy - x).abs().mean()


@pytest.mark.parametrize("kind", ["noise", "crop", "rotate", "blank"])
def test_corruptions_change_the_image_and_keep_its_shape(kind):
    x = pixels()
    out = corrupt_image(x, kind, record_generator(0, 5))
    assert out.shape == x.shape
    assert not torch.allclose(out, x, atol=1e-3)
    if kind == "blank":
        assert torch.count_nonzero(out) == 0


def test_swap_returns_the_other_image():
    other = pixels(9)
    assert torch.equal(
        corrupt_image(pixels(), ImageNegative.SWAP, record_generator(0, 1), swap_pixels=other),
        other,
    )
    with pytest.raises(ValueError):
        corrupt_image(pixels(), "swap", record_generator(0, 1))


def test_rotation_is_between_10_and_80_degrees():
    # A centred bar: its orientation after rotation reveals the angle.
    x = torch.zeros(1, 1, 65, 65)
    x[..., 30:35, 4:61] = 1.0
    for index in range(20):
        out = random_rotation(x, record_generator(0, index))[0, 0]
        ys, xs = torch.nonzero(out > 0.5, as_tuple=True)
        ys, xs = ys.float() - ys.float().mean(), xs.float() - xs.float().mean()
        cov = torch.stack(
            [
                torch.stack([(xs * xs).mean(), (xs * ys).mean()]),
                torch.stack([(xs * ys).mean(), (ys * ys).mean()]),
            ]
        )
        eigvals, eigvecs = torch.linalg.eigh(cov)
        vx, vy = eigvecs[:, -1].tolist()
        angle = abs(math.degrees(math.atan2(vy, vx)))
        angle = min(angle, 180 - angle)
        assert 8 <= angle <= 82, angle


def test_negatives_are_deterministic_per_record_epoch_and_seed():
    x = pixels()
    same = [corrupt_image(x, "noise", record_generator(7, 3, 0)) for _ in range(2)]
    assert torch.equal(same[0], same[1])
    assert not torch.equal(
        same[0], corrupt_image(x, "noise", record_generator(7, 4, 0))
    )  # other record
    assert not torch.equal(
        same[0], corrupt_image(x, "noise", record_generator(7, 3, 1))
    )  # other epoch
    assert not torch.equal(
        same[0], corrupt_image(x, "noise", record_generator(8, 3, 0))
    )  # other seed


def test_swapped_context_is_another_records_and_deterministic():
    contexts = [f"post {i}" for i in range(10)] + ["post 0"]  # a duplicate of record 0's context
    picks = [swapped_context_index(i, contexts, seed=1) for i in range(len(contexts))]
    assert picks == [swapped_context_index(i, contexts, seed=1) for i in range(len(contexts))]
    for i, j in enumerate(picks):
        assert j != i and contexts[j] != contexts[i]
    assert len(set(picks)) > 3  # not one fixed partner for everyone
    assert picks != [swapped_context_index(i, contexts, seed=2) for i in range(len(contexts))]
    assert {other_index(0, 2, s) for s in range(5)} == {1}
