"""Logged metrics: `rewards/accuracies` is the response-dimension accuracy (trl's meaning) for every
method; the MCM-DPO objective's z and its accuracy go under their own names."""

import torch

from modeltrain.mcmdpo.loss import MCMWeights, margin_metrics

# h = log pi - log pi_ref per record, [context][image][response]; index 0 wins in each dimension.
# Records 0 and 3 lose on the response but win z (the other dimensions carry it); record 1 wins
# the response and loses z; record 2 wins both. Response accuracy 2/4, z accuracy 3/4.
H = torch.zeros(4, 2, 2, 2)
H[0, 0, 0, 1] = 2.0
H[0, 0, 1], H[0, 1] = -20.0, -20.0
H[1, 0, 0, 1] = -2.0
H[1, 0, 1], H[1, 1] = 20.0, 20.0
H[2, 0, 0, 1] = -2.0
H[2, 0, 1], H[2, 1] = -5.0, -5.0
H[3, 0, 0, 1] = 1.0
H[3, 0, 1], H[3, 1] = -10.0, -10.0


def _response_accuracy(h: torch.Tensor) -> float:
    """Chosen beats rejected under the own context and image, written out by hand."""
    return sum(float(h[i, 0, 0, 0] - h[i, 0, 0, 1] > 0) for i in range(len(h))) / len(h)


def _z_accuracy(h: torch.Tensor, w: MCMWeights) -> float:
    terms = {
        (0, 0, 1): w.response,
        (0, 1, 0): w.image,
        (1, 0, 0): w.context,
        (0, 1, 1): w.image_response,
        (1, 0, 1): w.context_response,
        (1, 1, 0): w.context_image,
        (1, 1, 1): w.context_image_response,
    }
    z = [sum(r / w.norm * (h[i, 0, 0, 0] - h[i][k]) for k, r in terms.items()) for i in range(4)]
    return sum(float(v > 0) for v in z) / len(z)


def test_the_fixture_separates_the_two_accuracies():
    assert _response_accuracy(H) == 0.5 and _z_accuracy(H, MCMWeights()) == 0.75


def test_margin_metrics_name_response_and_z_accuracy_apart():
    policy = torch.randn(4, 2, 2, 2)
    metrics = margin_metrics(policy, policy - H, beta=0.1, weights=MCMWeights())
    assert metrics["rewards/accuracies"].item() == _response_accuracy(H)
    assert metrics["rewards/accuracies/response"].item() == _response_accuracy(H)
    assert metrics["mcm/z_accuracy"].item() == _z_accuracy(H, MCMWeights())


def test_trainer_logs_response_accuracy_as_rewards_accuracies(
    tiny_model_and_processor, synthetic_snapshot, tmp_path
):
    """Through MCMDPOTrainer's own loss and log: reference log-probs are set so that the
    records' h are exactly H, then one batch is scored and logged."""
    from transformers import TrainingArguments

    from modeltrain.mcmdpo.data import PreferenceDataset
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.refcache import dataset_condition_logps
    from modeltrain.mcmdpo.trainer import MCMDPOTrainer

    model, processor = tiny_model_and_processor
    dataset = PreferenceDataset(read_records(synthetic_snapshot)[:4], processor)
    policy = dataset_condition_logps(model, dataset, batch_size=4)
    dataset.ref_logps = policy - H
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=4
    )
    trainer = MCMDPOTrainer(
        model=model, args=args, train_dataset=dataset, weights=MCMWeights(), beta=0.1
    )
    batch = trainer.data_collator([dataset[i] for i in range(4)])
    model.eval()  # no dropout: the policy log-probs are the ones H was built on
    with torch.no_grad():
        trainer.compute_loss(model, batch)
    trainer.log({"loss": 0.0})
    logged = trainer.state.log_history[-1]
    assert logged["rewards/accuracies"] == _response_accuracy(H) == 0.5
    assert logged["rewards/accuracies/response"] == 0.5
    assert logged["mcm/z_accuracy"] == _z_accuracy(H, MCMWeights()) == 0.75
    assert abs(logged["rewards/margins"] - 0.1 * (H[:, 0, 0, 0] - H[:, 0, 0, 1]).mean()) < 1e-4
