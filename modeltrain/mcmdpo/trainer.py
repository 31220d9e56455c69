"""Trainer classes: MCM-DPO on transformers' Trainer, and atomic checkpoints for it and trl's trainers.

`MCMDPOTrainer` keeps everything transformers' Trainer does (optimiser, schedule, gradient
accumulation, DDP through accelerate, checkpoint/resume) and replaces only `compute_loss`: one
forward over the 8 conditions (prefix-tree packed by default), reference log-probs from the
precomputed cache or a live reference, `mcm_dpo_loss`, and per-dimension margins/accuracies
gathered across processes for the logs.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.data import PreferenceDataset, RecordExample
from modeltrain.mcmdpo.flex import attention_mask_for
from modeltrain.mcmdpo.loss import DIMENSIONS, MCMWeights, mcm_dpo_loss, reward_margins
from modeltrain.mcmdpo.modeling import reference_context
from modeltrain.mcmdpo.packing import Layout, condition_logps, packed_layout, unpacked_layout


class MCMCollator:
    """Batch of `RecordExample`s -> {"layout": Layout, "ref_logps": (batch, 2, 2, 2), "indices": (batch,)}."""

    def __init__(self, pad_token_id: int, *, packed: bool = True):
        self.pad_token_id = pad_token_id
        self.packed = packed

    def __call__(self, examples: list[RecordExample]) -> dict:
        build = packed_layout if self.packed else unpacked_layout
        batch = {
            "layout": build(examples, self.pad_token_id),
            "indices": torch.tensor([e.index for e in examples]),
        }
        if all(e.ref_logps is not None for e in examples):
            batch["ref_logps"] = torch.stack([e.ref_logps for e in examples])
        return batch


class AtomicCheckpointMixin:
    """Write each checkpoint into a staging folder, seal it, then rename it into place.

    Every process writes its share (rank-specific RNG state) into the same staging folder; the main
    process seals and publishes it once all are done, so a crash at any point leaves either the
    previous complete checkpoint or the new one, never a half-written folder named checkpoint-N.
    """

    def _save_checkpoint(self, model, trial):
        run_dir = Path(self._get_output_dir(trial=trial))
        name = f"checkpoint-{self.state.global_step}"
        staging_root = run_dir / f"{checkpoints.STAGING_PREFIX}{self.state.global_step}"
        if self.args.should_save:
            shutil.rmtree(staging_root, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        real_output_dir = self.args.output_dir
        real_limit = self.args.save_total_limit
        # Let the parent write checkpoint-N under the staging root; rotation happens after publish.
        self.args.output_dir, self.args.save_total_limit = str(staging_root), None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.output_dir, self.args.save_total_limit = real_output_dir, real_limit
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            checkpoints.publish(
                staging_root / name, run_dir / name, {"step": self.state.global_step}
            )
            shutil.rmtree(staging_root, ignore_errors=True)
            self._rotate(run_dir)
        self.accelerator.wait_for_everyone()

    def _rotate(self, run_dir: Path) -> None:
        limit = self.args.save_total_limit
        if not limit:
            return
        complete = [
            (step, path)
            for step, path in checkpoints.checkpoints(run_dir)
            if checkpoints.is_complete(path)
        ]
        for _, path in complete[:-limit]:
            shutil.rmtree(path, ignore_errors=True)


class VisionRateMixin:
    """Train the vision encoder and projector at `vision_lr_scale` times the language model's rate.

    A randomly initialised vision side trained at the language model's rate collapses: within the
    first steps the projector turns every picture into nearly the same large vector (the language
    model cannot use the picture yet, so its variation only adds noise to the loss), after which
    no gradient can bring the picture back. The demo model measured it: at one rate its alt-text
    ignored the picture (0.000 nats between a post's own picture and another), at a tenth of the
    rate for the vision side it reads it (about 6.7 nats). Set on the trainer before `train()`.
    """

    vision_lr_scale: float = 1.0

    def create_optimizer(self, *args, **kwargs):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(*args, **kwargs)
        if fresh and self.vision_lr_scale != 1.0:
            split_vision_groups(optimizer, self.model, self.vision_lr_scale)
        return optimizer


def split_vision_groups(optimizer, model, scale: float) -> None:
    """Move vision-encoder and projector parameters of each (still unstepped) param group into a
    copy of that group whose learning rate is `scale` times the group's."""
    from modeltrain.mcmdpo.modeling import parameter_group

    vision = {id(p) for n, p in model.named_parameters() if parameter_group(n) != "language"}
    for group in list(optimizer.param_groups):
        mine = [p for p in group["params"] if id(p) in vision]
        if not mine:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in vision]
        optimizer.add_param_group({**group, "params": mine, "lr": group["lr"] * scale})
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]


class MCMDPOTrainer(VisionRateMixin, AtomicCheckpointMixin, Trainer):
    """transformers Trainer whose loss is MCM-DPO over the 8 conditions of each record."""

    loss_is_scaled_for_ga = (
        False  # our loss is a per-batch mean; let Trainer divide by accumulation
    )

    def __init__(
        self,
        *,
        model,
        args,
        train_dataset: PreferenceDataset,
        weights: MCMWeights,
        beta: float = 0.1,
        packed: bool = True,
        ref_model=None,
        attention: str = "sdpa",
        **kwargs,
    ):
        pad = train_dataset.processor.tokenizer.pad_token_id
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            data_collator=MCMCollator(pad, packed=packed),
            processing_class=train_dataset.processor,
            **kwargs,
        )
        self.weights, self.beta, self.packed = weights, beta, packed
        self.ref_model = ref_model
        # Informational: the masks follow the model's own attention implementation.
        self.attention = attention
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.add_callback(_EpochNegatives(train_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        device = self.accelerator.device
        layout: Layout = inputs["layout"].to(device)
        policy = condition_logps(model, layout, attention_mask=self._attention_mask(layout))
        if "ref_logps" in inputs:
            reference = inputs["ref_logps"].to(device=device, dtype=policy.dtype)
        else:
            reference = self._live_reference(model, layout).to(policy.dtype)
        loss, z = mcm_dpo_loss(policy, reference, self.weights, self.beta)
        self._record_metrics(policy.detach(), reference, z.detach())
        return (loss, {"policy_logps": policy, "z": z}) if return_outputs else loss

    @torch.no_grad()
    def _live_reference(self, model, layout: Layout) -> torch.Tensor:
        if self.ref_model is not None:
            # The reference copy may run another attention implementation than the policy
            # (it is copied before the policy switches to flex): its own mask, not the policy's.
            return condition_logps(
                self.ref_model, layout, attention_mask=attention_mask_for(self.ref_model, layout)
            )
        with reference_context(model):
            return condition_logps(model, layout, attention_mask=self._attention_mask(layout))

    def _attention_mask(self, layout: Layout):
        """The mask training runs `layout` with (see flex.attention_mask_for); the reference
        cache is computed with the same function, so both see the same tokens."""
        return attention_mask_for(self.model, layout)

    def _record_metrics(
        self, policy: torch.Tensor, reference: torch.Tensor, z: torch.Tensor
    ) -> None:
        margins = reward_margins(policy, reference, self.beta)
        per_record = torch.stack(
            [*(margins[d] for d in DIMENSIONS), z, policy[:, 0, 0, 0], policy[:, 0, 0, 1]], dim=1
        )
        # gather_for_metrics drops the duplicates DDP pads the last batch with.
        gathered = self.accelerator.gather_for_metrics(per_record).float().cpu()
        for k, name in enumerate(DIMENSIONS):
            self._metrics[f"rewards/margins/{name}"].append(gathered[:, k].mean().item())
            self._metrics[f"rewards/accuracies/{name}"].append(
                (gathered[:, k] > 0).float().mean().item()
            )
        n = len(DIMENSIONS)
        response = list(DIMENSIONS).index("response")
        # trl's names mean the response dimension (chosen vs rejected, same image and context),
        # so a DPO and an MCM-DPO run compare on one chart; z has its own names.
        self._metrics["rewards/margins"].append(gathered[:, response].mean().item())
        self._metrics["rewards/accuracies"].append(
            (gathered[:, response] > 0).float().mean().item()
        )
        self._metrics["mcm/z"].append(gathered[:, n].mean().item())
        self._metrics["mcm/z_accuracy"].append((gathered[:, n] > 0).float().mean().item())
        self._metrics["logps/chosen"].append(gathered[:, n + 1].mean().item())
        self._metrics["logps/rejected"].append(gathered[:, n + 2].mean().item())
        self._metrics["records"].append(float(gathered.shape[0]))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._metrics:
            metrics = {k: sum(v) / len(v) for k, v in self._metrics.items() if k != "records"}
            metrics["records"] = sum(self._metrics["records"])  # records seen since the last log
            logs.update(metrics)
            self._metrics.clear()
        super().log(logs, start_time)


class _EpochNegatives(TrainerCallback):
    """Tell the dataset the epoch, so negatives re-draw per epoch when configured to."""

    def __init__(self, dataset: PreferenceDataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(int(state.epoch or 0))


class ProgressCallback(TrainerCallback):
    """Report progress to the caller (a Celery task) and stop between steps when asked."""

    def __init__(self, progress_callback=None, should_stop=None):
        self.progress_callback = progress_callback
        self.should_stop = should_stop
        self.stopped = False
        self.history: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        entry = {
            "step": state.global_step,
            "total": state.max_steps,
            "loss": logs.get("loss"),
            "margins": {
                k.split("/")[-1]: v for k, v in logs.items() if k.startswith("rewards/margins/")
            },
            "accuracies": {
                k.split("/")[-1]: v for k, v in logs.items() if k.startswith("rewards/accuracies/")
            },
            "logs": dict(logs),
        }
        self.history.append(entry)
        if self.progress_callback is not None:
            self.progress_callback(entry)

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is None:
            return
        stop = bool(self.should_stop())
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            nccl = torch.distributed.get_backend() == "nccl"
            flag = torch.tensor([1 if stop else 0], device="cuda" if nccl else "cpu")
            torch.distributed.all_reduce(flag)  # gloo/nccl: every rank stops at the same step
            stop = bool(flag.item())
        if stop:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True  # a cancelled round can still be resumed


def clear_output_staging(output_dir: str | os.PathLike) -> None:
    checkpoints.clean_staging(output_dir)
