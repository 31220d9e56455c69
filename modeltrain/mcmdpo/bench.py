"""Benchmark: trl DPO vs MCM-DPO (unpacked live reference, unpacked precomputed, packed) step cost.

    python -m modeltrain.mcmdpo.bench --shape tiny|1b|7b [--cpu] [--batch N] [--steps N] [--json]

Builds a randomly initialised LLaVA-shaped model (7b: CLIP ViT-L/14 at 336 px, 576 image tokens,
a LLaVA-1.5-7B Llama), puts LoRA r=16 on the language model, uses bf16 and gradient checkpointing
on a GPU, and trains each variant through its real trainer on synthetic ~700-token rows. Reports
the median step time after one warm-up step, records/s, peak GPU memory and ratios to trl DPO.
The precomputed-reference variants read reference log-probs from the dataset, as training does
after the cache is built; the one-off cost of building it is not part of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class BenchShape:
    image_size: int
    patch_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    intermediate: int
    vocab: int
    context_words: int  # sized so a row is ~700 tokens at 1b/7b
    response_words: int


SHAPES = {
    "tiny": BenchShape(56, 14, 32, 1, 2, 64, 2, 4, 2, 128, 512, 60, 12),
    "1b": BenchShape(336, 14, 1024, 24, 16, 2048, 16, 32, 8, 8192, 32000, 90, 25),
    "7b": BenchShape(336, 14, 1024, 24, 16, 4096, 32, 32, 32, 11008, 32000, 90, 25),
}
WORDS = ("red green blue small large photo of a the dog cat street sky with people post about my day "
         "holiday food tree car house woman man child smiling sign text shows close up view").split()  # fmt: skip


def build(shape_name: str, device: torch.device, dtype: torch.dtype, folder: Path):
    """Random-init LLaVA of the given shape + processor + synthetic records written to `folder`."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from modeltrain.mcmdpo.tiny import IMAGE_TOKEN, TinyShape, build_processor, build_tokenizer

    s = SHAPES[shape_name]
    tokenizer = build_tokenizer([" ".join(WORDS)], extra_words=["for"])
    processor = build_processor(
        tokenizer, TinyShape(image_size=s.image_size, patch_size=s.patch_size)
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=s.vision_hidden, intermediate_size=s.vision_hidden * 4, num_hidden_layers=s.vision_layers,
            num_attention_heads=s.vision_heads, image_size=s.image_size, patch_size=s.patch_size,
        ),
        text_config=LlamaConfig(
            vocab_size=max(s.vocab, len(tokenizer)), hidden_size=s.text_hidden, intermediate_size=s.intermediate,
            num_hidden_layers=s.text_layers, num_attention_heads=s.text_heads, num_key_value_heads=s.text_kv_heads,
            max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=(s.image_size // s.patch_size) ** 2,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration(config).to(dtype)
    model.set_attn_implementation("sdpa")
    return model, processor, _write_records(folder, s, count=64)


def _write_records(folder: Path, s: BenchShape, count: int) -> Path:
    from PIL import Image

    rng = random.Random(0)
    images = folder / "image" / "bench_train"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        pixels = bytes(rng.randrange(256) for _ in range(3 * 32 * 32))
        Image.frombytes("RGB", (32, 32), pixels).resize((s.image_size, s.image_size)).save(
            images / f"{i}.png"
        )
        text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
        question = (
            "Given an image and context, generate alt-text for the image.\nContext:\n"
            + text(s.context_words)
        )
        payload = {
            "question": question,
            "chosen": text(s.response_words),
            "rejected": text(s.response_words),
        }
        rows.append({"image": {"path": f"{i}.png"}, "text": json.dumps(payload)})
    (folder / "bench_train.json").write_text(json.dumps(rows))
    return folder


class StepTimer:
    """Trainer callback recording wall-clock seconds per optimiser step (device-synchronised)."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                _sync()
                timer.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                _sync()
                timer.times.append(time.perf_counter() - timer.start)

        self.times: list[float] = []
        self.start = 0.0
        self.callback = _Callback()


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_variant(name, model, processor, records, args, *, batch):
    from modeltrain.mcmdpo.data import PreferenceDataset
    from modeltrain.mcmdpo.loss import MCMWeights
    from modeltrain.mcmdpo.trainer import MCMDPOTrainer

    timer = StepTimer()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    tokens = None
    if name == "trl_dpo":
        from trl import DPOConfig, DPOTrainer

        from modeltrain.mcmdpo.run import _image_dataset, trl_preference_rows

        dataset = _image_dataset(trl_preference_rows(records, processor))
        trainer = DPOTrainer(
            model=model, args=DPOConfig(**args, max_length=None), train_dataset=dataset, processing_class=processor,
            callbacks=[timer.callback],
        )  # fmt: skip
        sample = trainer.data_collator([dataset[i] for i in range(batch)])
        tokens = int(sample["attention_mask"].sum())
    else:
        from transformers import TrainingArguments

        dataset = PreferenceDataset(
            records, processor, max_response_tokens=64, max_context_chars=4000
        )
        if name != "mcm_unpacked_live":
            dataset.ref_logps = torch.full(
                (len(records), 2, 2, 2), -50.0
            )  # read like the on-disk cache
        trainer = MCMDPOTrainer(
            model=model, args=TrainingArguments(**args, remove_unused_columns=False), train_dataset=dataset,
            weights=MCMWeights(), packed=name == "mcm_packed", callbacks=[timer.callback],
        )  # fmt: skip
        tokens = trainer.data_collator([dataset[i] for i in range(batch)])["layout"].num_tokens
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    trainer.train()
    measured = timer.times[1:] or timer.times  # the first step warms up kernels and allocators
    median = statistics.median(measured)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "variant": name,
        "median_step_s": median,
        "records_per_s": batch / median,
        "peak_mem_gib": peak,
        "tokens_per_step": tokens,
        "steps_timed": len(measured),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument(
        "--cpu", action="store_true", help="run on the CPU even if a GPU is present"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (plus one warm-up)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--variants", default="trl_dpo,mcm_unpacked_live,mcm_unpacked_precomputed,mcm_packed",
        help="comma-separated subset",
    )  # fmt: skip
    opts = parser.parse_args(argv)

    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.modeling import prepare_trainable

    gpu = torch.cuda.is_available() and not opts.cpu
    device = torch.device("cuda" if gpu else "cpu")
    dtype = torch.bfloat16 if gpu else torch.float32
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model, processor, folder = build(opts.shape, device, dtype, Path(tmp) / "data")
        records = read_records(folder)
        lora_only = MCMDPOConfig(
            paradigm="frozen", train_projector=False, use_lora=True, lora_r=16, lora_alpha=32
        )
        model = prepare_trainable(model, lora_only)
        args = dict(
            output_dir=str(Path(tmp) / "out"), per_device_train_batch_size=opts.batch, max_steps=opts.steps + 1,
            learning_rate=1e-5, logging_steps=1000, save_strategy="no", report_to=[], disable_tqdm=True,
            use_cpu=not gpu, bf16=gpu, gradient_checkpointing=gpu,
            gradient_checkpointing_kwargs={"use_reentrant": False} if gpu else None, dataloader_num_workers=0,
        )  # fmt: skip
        for name in opts.variants.split(","):
            results.append(run_variant(name, model, processor, records, args, batch=opts.batch))
    base = next((r for r in results if r["variant"] == "trl_dpo"), None)
    for r in results:
        r["speed_vs_trl_dpo"] = r["records_per_s"] / base["records_per_s"] if base else None
        if base and r["peak_mem_gib"] and base["peak_mem_gib"]:
            r["memory_vs_trl_dpo"] = r["peak_mem_gib"] / base["peak_mem_gib"]
        else:
            r["memory_vs_trl_dpo"] = None
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    if opts.json:
        print(
            json.dumps(
                {
                    "shape": opts.shape,
                    "batch": opts.batch,
                    "device": device_name,
                    "results": results,
                }
            )
        )
    else:
        print(f"shape={opts.shape} batch={opts.batch} device={device_name}")
        print(
            f"{'variant':28} {'s/step':>8} {'rec/s':>8} {'peak GiB':>9} {'tokens':>7} {'speed×':>7} {'mem×':>6}"
        )
        for r in results:
            peak = f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] is not None else "-"
            mem = f"{r['memory_vs_trl_dpo']:.2f}" if r["memory_vs_trl_dpo"] is not None else "-"
            print(
                f"{r['variant']:28} {r['median_step_s']:8.3f} {r['records_per_s']:8.2f} {peak:>9} "
                f"{r['tokens_per_step']:7d} {r['speed_vs_trl_dpo']:7.2f} {mem:>6}"
            )
    return results


if __name__ == "__main__":
    main()
