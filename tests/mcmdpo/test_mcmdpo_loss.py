"""The MCM-DPO loss against an independent formulation, and its DPO special case against trl."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from modeltrain.mcmdpo.loss import MCMWeights, margin_metrics, mcm_dpo_loss, reward_margins

# The paper's table, written out independently of loss.DIMENSIONS: (weight, loser (c, m, y)).
PAPER_TABLE = [
    (1.0, (0, 0, 1)),  # response
    (0.5, (0, 1, 0)),  # image
    (0.5, (1, 0, 0)),  # context
    (0.2, (0, 1, 1)),  # image + response
    (0.2, (1, 0, 1)),  # context + response
    (0.2, (1, 1, 0)),  # context + image
    (0.2, (1, 1, 1)),  # context + image + response
]


def loop_loss(policy, reference, table, norm, beta):
    """Per record, per loser, in plain Python floats."""
    losses, zs = [], []
    for b in range(policy.shape[0]):
        h = lambda c, m, y, b=b: float(policy[b, c, m, y] - reference[b, c, m, y])  # noqa: E731
        z = sum(w / norm * (h(0, 0, 0) - h(*loser)) for w, loser in table)
        zs.append(z)
        losses.append(math.log1p(math.exp(-beta * z)))  # -log sigmoid(beta z)
    return sum(losses) / len(losses), zs


def test_default_weights_are_the_papers():
    w = MCMWeights()
    assert (w.response, w.image, w.context) == (1.0, 0.5, 0.5)
    assert (w.image_response, w.context_response, w.context_image, w.context_image_response) == (
        0.2,
    ) * 4
    assert w.norm == pytest.approx(2.8)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_loss_matches_explicit_loop_over_the_seven_losers(beta):
    gen = torch.Generator().manual_seed(0)
    policy = torch.randn(6, 2, 2, 2, generator=gen, dtype=torch.float64) * 5 - 30
    reference = torch.randn(6, 2, 2, 2, generator=gen, dtype=torch.float64) * 5 - 30
    loss, z = mcm_dpo_loss(policy, reference, MCMWeights(), beta=beta)
    expected_loss, expected_z = loop_loss(policy, reference, PAPER_TABLE, 2.8, beta)
    assert z.shape == (6,)
    assert z.tolist() == pytest.approx(expected_z, rel=1e-9, abs=1e-9)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-9)


def test_custom_weights_each_hit_their_own_loser():
    gen = torch.Generator().manual_seed(1)
    policy = torch.randn(3, 2, 2, 2, generator=gen, dtype=torch.float64)
    reference = torch.zeros_like(policy)
    weights = MCMWeights(
        response=0.3,
        image=1.1,
        context=0.7,
        image_response=0.0,
        context_response=2.0,
        context_image=0.4,
        context_image_response=0.9,
        norm=3.0,
    )
    table = [(0.3, (0, 0, 1)), (1.1, (0, 1, 0)), (0.7, (1, 0, 0)), (0.0, (0, 1, 1)), (2.0, (1, 0, 1)),
             (0.4, (1, 1, 0)), (0.9, (1, 1, 1))]  # fmt: skip
    loss, z = mcm_dpo_loss(policy, reference, weights, beta=0.2)
    expected_loss, expected_z = loop_loss(policy, reference, table, 3.0, 0.2)
    assert z.tolist() == pytest.approx(expected_z)
    assert loss.item() == pytest.approx(expected_loss)


def test_loss_gradient_matches_autograd_of_the_loop_form():
    gen = torch.Generator().manual_seed(2)
    policy = torch.randn(4, 2, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    reference = torch.randn(4, 2, 2, 2, generator=gen, dtype=torch.float64)
    mcm_dpo_loss(policy, reference)[0].backward()
    ours = policy.grad.clone()
    policy.grad = None
    h = policy - reference
    z = sum(w / 2.8 * (h[:, 0, 0, 0] - h[(slice(None), *loser)]) for w, loser in PAPER_TABLE)
    (-F.logsigmoid(0.1 * z).mean()).backward()
    assert torch.allclose(ours, policy.grad)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        mcm_dpo_loss(torch.zeros(2, 8), torch.zeros(2, 8))


def test_margins_and_accuracies_per_dimension():
    policy = torch.zeros(2, 2, 2, 2)
    reference = torch.zeros(2, 2, 2, 2)
    policy[:, 0, 0, 0] = 1.0  # the winner gains log-prob
    policy[0, 0, 1, 0] = 3.0  # record 0 prefers the corrupted image: image margin negative there
    margins = reward_margins(policy, reference, beta=0.5)
    assert margins["response"].tolist() == [0.5, 0.5]
    assert margins["image"].tolist() == [-1.0, 0.5]
    metrics = margin_metrics(policy, reference, beta=0.5)
    assert metrics["rewards/accuracies/image"].item() == 0.5
    assert metrics["rewards/accuracies/context"].item() == 1.0
    assert metrics["rewards/margins/image"].item() == pytest.approx(-0.25)
    assert metrics["rewards/chosen"].item() == pytest.approx(0.5)


def test_dpo_special_case_equals_trls_dpo_loss(tiny_base, synthetic_snapshot, tmp_path):
    """Only the response weight: our loss on trl's own batch equals DPOTrainer.compute_loss."""
    from trl import DPOConfig, DPOTrainer

    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.modeling import load_model_and_processor
    from modeltrain.mcmdpo.run import _image_dataset, trl_preference_rows

    policy, processor = load_model_and_processor(str(tiny_base))
    reference = copy.deepcopy(policy).eval()
    with torch.no_grad():  # make the policy differ from the reference, so the loss is not log 2
        gen = torch.Generator().manual_seed(3)
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    records = read_records(synthetic_snapshot)[:4]
    dataset = _image_dataset(trl_preference_rows(records, processor))
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"), beta=0.1, max_length=None, report_to=[], use_cpu=True,
        per_device_train_batch_size=4, remove_unused_columns=False,
    )  # fmt: skip
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )
    batch = trainer.data_collator([dataset[i] for i in range(4)])
    policy.eval()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch).item()
        chosen, rejected = _sequence_logps(policy, batch).chunk(2)
        ref_chosen, ref_rejected = _sequence_logps(reference, batch).chunk(2)

    # The six other conditions are filled with noise: with DPO weights they must not matter.
    gen = torch.Generator().manual_seed(4)
    ours_policy = torch.randn(4, 2, 2, 2, generator=gen) - 20
    ours_reference = torch.randn(4, 2, 2, 2, generator=gen) - 20
    ours_policy[:, 0, 0, 0], ours_policy[:, 0, 0, 1] = chosen, rejected
    ours_reference[:, 0, 0, 0], ours_reference[:, 0, 0, 1] = ref_chosen, ref_rejected
    loss, _ = mcm_dpo_loss(ours_policy, ours_reference, MCMWeights.dpo(), beta=0.1)
    assert abs(trl_loss - math.log(2)) > 1e-3  # the comparison is not the trivial z = 0 case
    assert loss.item() == pytest.approx(trl_loss, abs=1e-5)
    # and the default weights give a different number: the other six terms are really used
    assert mcm_dpo_loss(ours_policy, ours_reference)[0].item() != pytest.approx(trl_loss, abs=1e-3)


def _sequence_logps(model, batch):
    """Summed completion log-probs from full logits: independent of trl's fused head."""
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
    )
    logps = (
        F.log_softmax(out.logits[:, :-1].float(), -1)
        .gather(-1, batch["input_ids"][:, 1:, None])
        .squeeze(-1)
    )
    return (logps * batch["completion_mask"][:, 1:]).sum(-1)
