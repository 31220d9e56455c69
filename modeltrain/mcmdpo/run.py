"""`run_training`: one SFT, DPO or MCM-DPO round from a config, a snapshot folder and an output folder.

This is what the Celery task calls (Django-free). It resumes from the newest complete checkpoint
in `output_dir`, reports progress through `progress_callback`, stops between steps when
`should_stop()` is true, and publishes the final model atomically to ``<output_dir>/final``.
Runs unchanged under ``accelerate launch`` (DDP): every process calls it with the same arguments.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.config import MCMDPOConfig, Method
from modeltrain.mcmdpo.data import (
    NegativeSpec,
    PreferenceDataset,
    PromptStyle,
    load_image,
    render_prompt,
)
from modeltrain.mcmdpo.families import adapter_for_model
from modeltrain.mcmdpo.formats import PreferenceRecord, read_records
from modeltrain.mcmdpo.modeling import (
    default_dtype,
    is_peft,
    load_model_and_processor,
    prepare_trainable,
    reference_context,
)
from modeltrain.mcmdpo.refcache import load_or_compute
from modeltrain.mcmdpo.trainer import (
    AtomicCheckpointMixin,
    MCMDPOTrainer,
    ProgressCallback,
    VisionRateMixin,
)

FINAL_DIR = "final"


@dataclass
class TrainingResult:
    """What a round produced: where the model is and how training went."""

    final_dir: Path | None
    global_step: int
    max_steps: int
    resumed_from: Path | None
    stopped: bool
    history: list[dict] = field(default_factory=list)
    reference_cache: Path | None = None
    reference_cache_hit: bool = False

    @property
    def last_metrics(self) -> dict:
        return self.history[-1]["logs"] if self.history else {}


def run_training(
    config: MCMDPOConfig,
    snapshot_dir: str | Path,
    output_dir: str | Path,
    progress_callback: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_callbacks: list | None = None,
) -> TrainingResult:
    """Train per `config` on the records in `snapshot_dir`; checkpoints and the result go to `output_dir`."""
    output_dir = Path(output_dir)
    records = read_records(snapshot_dir, require_rejected=config.method is not Method.SFT)
    dtype = default_dtype(config)
    from transformers import set_seed

    set_seed(
        config.seed
    )  # LoRA adapters are initialised randomly: the same seed gives the same run
    model, processor = load_model_and_processor(config.base_model, dtype)
    base_for_reference = None
    if config.method is Method.MCMDPO and not config.precompute_reference and not config.use_lora:
        # Full fine-tuning with a live reference needs a frozen copy of the starting weights.
        base_for_reference = copy.deepcopy(model).eval().requires_grad_(False)
    model = prepare_trainable(model, config)

    resume_from = None
    if config.resume:
        checkpoints.clean_staging(output_dir)
        resume_from = checkpoints.newest_complete_checkpoint(output_dir)
    progress = ProgressCallback(progress_callback, should_stop)
    callbacks = [progress, *(extra_callbacks or [])]

    ref_path, ref_hit = None, False
    if config.method is Method.MCMDPO:
        trainer, ref_path, ref_hit = _mcmdpo_trainer(
            config,
            records,
            model,
            processor,
            output_dir,
            callbacks,
            base_for_reference,
            resume_from,
            dtype,
        )
    elif config.method is Method.DPO:
        trainer = _dpo_trainer(config, records, model, processor, output_dir, callbacks)
    else:
        trainer = _sft_trainer(config, records, model, processor, output_dir, callbacks)

    trainer.vision_lr_scale = config.vision_lr_scale
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(
        PrinterCallback
    )  # progress goes to progress_callback and the logs, not stdout
    _log_into(trainer, output_dir)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_dir = _publish_final(trainer, processor, config, output_dir)
    return TrainingResult(
        final_dir=final_dir,
        global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        resumed_from=resume_from,
        stopped=progress.stopped,
        history=progress.history,
        reference_cache=ref_path,
        reference_cache_hit=ref_hit,
    )


def training_arguments(config: MCMDPOConfig, output_dir: Path, cls=None, **extra):
    """transformers/trl training arguments shared by the three methods."""
    from transformers import TrainingArguments

    cls = cls or TrainingArguments
    bf16 = default_dtype(config) == torch.bfloat16
    return cls(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio in transformers 5
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        bf16=bf16,
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False}
        if config.gradient_checkpointing
        else None,
        use_cpu=not torch.cuda.is_available(),
        report_to=report_to(),
        disable_tqdm=True,
        dataloader_num_workers=0,
        **extra,
    )


TENSORBOARD_DIR = "tensorboard"


def report_to() -> list[str]:
    """Where training logs go besides the progress log: TensorBoard event files always (in
    <output_dir>/tensorboard), MLflow when MLFLOW_TRACKING_URI is set (mlflow is optional:
    ``pip install 'altpref[mlflow]'``)."""
    from transformers.integrations import is_mlflow_available, is_tensorboard_available

    targets = []
    if is_tensorboard_available():
        targets.append("tensorboard")
    if os.environ.get("MLFLOW_TRACKING_URI"):
        if not is_mlflow_available():
            raise RuntimeError(
                "MLFLOW_TRACKING_URI is set but mlflow is not installed: "
                "pip install 'altpref[mlflow]', or unset MLFLOW_TRACKING_URI"
            )
        targets.append("mlflow")
    return targets


def _log_into(trainer, output_dir: Path) -> None:
    """Point the TensorBoard writer at <output_dir>/tensorboard: one folder a round owns, not
    transformers' default runs/<date>_<host> (which a resumed round would split in two)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(output_dir / TENSORBOARD_DIR)


def _mcmdpo_trainer(
    config, records, model, processor, output_dir, callbacks, base_for_reference, resume_from, dtype
):
    dataset = PreferenceDataset(
        records,
        processor,
        negatives=NegativeSpec(
            image=config.negative_image,
            noise_step=config.noise_step,
            seed=config.negative_seed,
            vary_by_epoch=config.vary_negatives_by_epoch,
        ),
        max_response_tokens=config.max_response_tokens,
        max_context_chars=config.max_context_chars,
        style=prompt_style(config),
    )
    attention = config.attention
    if attention == "auto":
        attention = "sdpa"  # SDPA takes the packed boolean mask on every device; flex is opt-in
    if attention == "flex":
        from modeltrain.mcmdpo.flex import flex_available

        if not flex_available():
            raise RuntimeError("attention='flex' needs CUDA and torch.nn.attention.flex_attention")
        getattr(model, "base_model", model).set_attn_implementation("flex_attention")
    args = training_arguments(config, output_dir, remove_unused_columns=False)
    trainer = MCMDPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        weights=config.weights,
        beta=config.beta,
        packed=config.packed,
        ref_model=base_for_reference.to(args.device) if base_for_reference is not None else None,
        attention=attention,
        callbacks=callbacks,
    )
    if dataset.negatives.vary_by_epoch and config.precompute_reference:
        raise ValueError("precomputed reference log-probs need negatives fixed across epochs")
    ref_path, ref_hit = None, False
    if config.precompute_reference:
        if resume_from is not None and not is_peft(model):
            # A resumed full fine-tune no longer holds the reference weights: only the cache has them.
            cache = _cache_dir(config, output_dir)
            if not any(cache.glob("ref-*.pt")):
                raise RuntimeError(
                    "resuming full fine-tuning needs the reference cache written by the first run"
                )
        with reference_context(trainer.model):
            logps, ref_path, ref_hit = load_or_compute(
                trainer.model,
                dataset,
                cache_dir=_cache_dir(config, output_dir),
                base_model=config.base_model,
                dtype=dtype,
                batch_size=max(1, config.per_device_batch_size),
                accelerator=trainer.accelerator,
            )
        dataset.ref_logps = logps
    return trainer, ref_path, ref_hit


def _cache_dir(config: MCMDPOConfig, output_dir: Path) -> Path:
    return (
        Path(config.reference_cache_dir) if config.reference_cache_dir else output_dir / "ref-cache"
    )


def prompt_style(config: MCMDPOConfig) -> PromptStyle:
    return PromptStyle(template=config.prompt_template, pad_to_square=config.pad_to_square)


def _trl_image(path: str, processor, style: PromptStyle):
    """A path for trl to load, or the padded picture itself when the style changes it."""
    if not style.pad_to_square:
        return path
    return style.picture(load_image(path), processor)


def _completion(text: str, processor) -> str:
    """A completion that ends with EOS, as MCM-DPO's responses and the reference's labels do.

    trl 1.16's vision collators tokenise completions as they are, so without it DPO and SFT would
    neither score nor learn the end of the alt-text (a model that never stops writing).
    """
    eos = processor.tokenizer.eos_token
    return text if text.endswith(eos) else text + eos


def trl_preference_rows(
    records: list[PreferenceRecord], processor, style: PromptStyle | None = None
) -> list[dict]:
    """Rows in trl's standard vision preference format, with the prompt rendered like MCM-DPO's."""
    style = style or PromptStyle()
    return [
        {
            "images": [_trl_image(record.image_path, processor, style)],
            "prompt": render_prompt(processor, record.question, style=style),
            "chosen": _completion(record.chosen, processor),
            "rejected": _completion(record.rejected, processor),
        }
        for record in records
    ]


def _image_dataset(rows: list[dict]):
    from datasets import Dataset, Image, List

    return Dataset.from_list(rows).cast_column("images", List(Image()))


def _dpo_trainer(config, records, model, processor, output_dir, callbacks):
    from trl import DPOConfig, DPOTrainer

    trainer_cls = type("AtomicDPOTrainer", (VisionRateMixin, AtomicCheckpointMixin, DPOTrainer), {})
    args = training_arguments(
        config,
        output_dir,
        cls=DPOConfig,
        beta=config.beta,
        max_length=None,
        # trl 1.16 refuses precomputed reference log-probs for vision datasets; with LoRA it uses the
        # adapter-free base as the reference, with full fine-tuning it keeps a reference copy.
        precompute_ref_log_probs=False,
        remove_unused_columns=False,
    )
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=_image_dataset(trl_preference_rows(records, processor, prompt_style(config))),
        processing_class=adapter_for_model(model).trl_processor(processor),
        callbacks=callbacks,
    )


def _sft_trainer(config, records, model, processor, output_dir, callbacks):
    from trl import SFTConfig, SFTTrainer

    trainer_cls = type("AtomicSFTTrainer", (VisionRateMixin, AtomicCheckpointMixin, SFTTrainer), {})
    style = prompt_style(config)
    rows = [
        {
            "images": [_trl_image(r.image_path, processor, style)],
            "prompt": render_prompt(processor, r.question, style=style),
            "completion": _completion(r.chosen, processor),
        }
        for r in records
    ]
    args = training_arguments(
        config, output_dir, cls=SFTConfig, max_length=None, remove_unused_columns=False
    )
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=_image_dataset(rows),
        processing_class=adapter_for_model(model).trl_processor(processor),
        callbacks=callbacks,
    )


def _publish_final(trainer, processor, config: MCMDPOConfig, output_dir: Path) -> Path | None:
    """Save the trained model (adapter or full) + processor + config to <output_dir>/final, atomically."""
    staging = output_dir / f"{checkpoints.STAGING_PREFIX}final"
    if trainer.args.should_save:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    final = output_dir / FINAL_DIR
    if trainer.args.should_save:
        processor.save_pretrained(str(staging))
        (staging / "altpref_training.json").write_text(
            json.dumps(
                {"config": config.to_dict(), "global_step": trainer.state.global_step}, indent=1
            )
        )
        checkpoints.publish(staging, final, {"step": trainer.state.global_step})
    trainer.accelerator.wait_for_everyone()
    return final
