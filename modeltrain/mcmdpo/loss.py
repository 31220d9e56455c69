"""The MCM-DPO objective: one log-sigmoid over seven weighted margins, plus per-dimension metrics.

Log-prob tensors have shape (batch, context, image, response) = (batch, 2, 2, 2); index 0 is the
winner in each dimension (own context, own image, chosen response), index 1 the loser (another
record's context, corrupted image, rejected response). Each entry is the summed log-probability of
the response tokens under that condition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

# Loser index (context, image, response) for each weighted dimension; the winner is (0, 0, 0).
DIMENSIONS: dict[str, tuple[int, int, int]] = {
    "response": (0, 0, 1),
    "image": (0, 1, 0),
    "context": (1, 0, 0),
    "image_response": (0, 1, 1),
    "context_response": (1, 0, 1),
    "context_image": (1, 1, 0),
    "context_image_response": (1, 1, 1),
}


@dataclass(frozen=True)
class MCMWeights:
    """Weight of the margin against each loser; `norm` divides them all (the paper's Z = 2.8)."""

    response: float = 1.0
    image: float = 0.5
    context: float = 0.5
    image_response: float = 0.2
    context_response: float = 0.2
    context_image: float = 0.2
    context_image_response: float = 0.2
    norm: float = 2.8

    @classmethod
    def dpo(cls) -> MCMWeights:
        """Only the response margin: the objective reduces to plain DPO."""
        return cls(
            response=1.0,
            image=0.0,
            context=0.0,
            image_response=0.0,
            context_response=0.0,
            context_image=0.0,
            context_image_response=0.0,
            norm=1.0,
        )

    def as_tensor(self, *, device=None, dtype=None) -> torch.Tensor:
        """(2, 2, 2) tensor of r_k / Z at each loser's index, 0 at the winner."""
        table = torch.zeros(2, 2, 2, device=device, dtype=dtype or torch.float32)
        values = asdict(self)
        for name, index in DIMENSIONS.items():
            table[index] = values[name] / self.norm
        return table

    def active(self) -> list[str]:
        """Names of the dimensions with a non-zero weight (those worth logging)."""
        values = asdict(self)
        return [name for name in DIMENSIONS if values[name] != 0.0]


def mcm_dpo_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    weights: MCMWeights = MCMWeights(),  # noqa: B008 - frozen dataclass, safe as a default
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MCM-DPO loss.

    Args:
        policy_logps, reference_logps: (batch, 2, 2, 2) summed response log-probs,
            indexed [context][image][response].
        weights: the seven margin weights and their normaliser.
        beta: inverse temperature of the implicit reward.

    Returns:
        loss: scalar, mean over the batch of -log sigmoid(beta * z).
        z: (batch,), sum_k (r_k / Z) * (h(winner) - h(loser_k)) with h = log pi - log pi_ref.
    """
    _check_shape(policy_logps, reference_logps)
    h = (policy_logps - reference_logps).flatten(1)  # (batch, 8)
    w = weights.as_tensor(device=h.device, dtype=h.dtype).flatten()  # (8,)
    # sum_k w_k (h_0 - h_k) = h_0 * sum(w) - sum_k w_k h_k, as one matmul over the 8 conditions.
    z = h[:, 0] * w.sum() - h @ w
    loss = -F.logsigmoid(beta * z).mean()
    return loss, z


def reward_margins(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float = 0.1
) -> dict[str, torch.Tensor]:
    """Per-record implicit reward margin beta * (h(winner) - h(loser)) for each dimension.

    Returns a dict of (batch,) tensors keyed by dimension name (detached).
    """
    _check_shape(policy_logps, reference_logps)
    h = (policy_logps - reference_logps).detach()
    winner = h[:, 0, 0, 0]
    return {name: beta * (winner - h[(slice(None), *index)]) for name, index in DIMENSIONS.items()}


def margin_metrics(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    beta: float = 0.1,
    dimensions: list[str] | None = None,
    weights: MCMWeights | None = None,
) -> dict[str, torch.Tensor]:
    """Batch means of margins and accuracies (margin > 0) per dimension, for logging.

    Keys are ``rewards/margins/<dim>`` and ``rewards/accuracies/<dim>``; also ``rewards/chosen``,
    ``rewards/rejected``, ``rewards/margins`` and ``rewards/accuracies`` named as trl's DPO logs them
    (response dimension), so DPO and MCM-DPO runs compare on one chart. With `weights`, also the
    MCM-DPO objective's ``mcm/z`` (mean z) and ``mcm/z_accuracy`` (share of records with z > 0),
    under their own names: they are not the response accuracy.
    """
    margins = reward_margins(policy_logps, reference_logps, beta)
    h = (policy_logps - reference_logps).detach()
    out: dict[str, torch.Tensor] = {}
    for name in dimensions or list(DIMENSIONS):
        out[f"rewards/margins/{name}"] = margins[name].mean()
        out[f"rewards/accuracies/{name}"] = (margins[name] > 0).float().mean()
    out["rewards/chosen"] = beta * h[:, 0, 0, 0].mean()
    out["rewards/rejected"] = beta * h[:, 0, 0, 1].mean()
    out["rewards/margins"] = margins["response"].mean()
    out["rewards/accuracies"] = (margins["response"] > 0).float().mean()
    if weights is not None:
        _, z = mcm_dpo_loss(policy_logps.detach(), reference_logps.detach(), weights, beta)
        out["mcm/z"] = z.mean()
        out["mcm/z_accuracy"] = (z > 0).float().mean()
    return out


def _check_shape(policy_logps: torch.Tensor, reference_logps: torch.Tensor) -> None:
    if policy_logps.shape[1:] != (2, 2, 2) or policy_logps.shape != reference_logps.shape:
        raise ValueError(
            "log-probs must both have shape (batch, 2, 2, 2); got "
            f"{tuple(policy_logps.shape)} and {tuple(reference_logps.shape)}"
        )
