"""Benchmark: trl DPO vs MCM-DPO (unpacked live reference, unpacked precomputed, packed) step cost.

    python -m modeltrain.mcmdpo.bench [--family llava|qwen2_5_vl] [--size tiny|1b|7b] [--cpu]
        [--batch N] [--steps N] [--variants a,b] [--json]

Builds a randomly initialised model of the family's shape from the public transformers config
classes (llava 7b: LLaVA-1.5-7B, CLIP ViT-L/14 at 336 px, 576 image tokens, a Llama-7B;
qwen2_5_vl 7b: Qwen2.5-VL-7B-Instruct's sizes, 672 px images = 576 image tokens), puts LoRA r=16
on the language model, uses bf16 and gradient checkpointing on a GPU, and trains each variant
through its real trainer on synthetic ~700-token rows. Reports the median step time after one
warm-up step, records/s, peak GPU memory and ratios to trl DPO. The precomputed-reference
variants read reference log-probs from the dataset, as training does after the cache is built;
the one-off cost of building it is not part of a step. A family the training library has no
adapter for yet (modeltrain.mcmdpo.families) gets its MCM-DPO rows marked skipped, with why.
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


@dataclass(frozen=True)
class QwenShape:
    """Qwen2.5-VL sizes: a windowed ViT with a 2x2 patch merger, Qwen2 LM with M-RoPE."""

    image_size: int  # square images, patch 14, merged 2x2: (size / 28) ** 2 image tokens
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vision_intermediate: int
    window_size: int
    fullatt_blocks: tuple[int, ...]
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    intermediate: int
    vocab: int
    mrope_section: tuple[int, int, int]  # sums to head_dim / 2
    context_words: int
    response_words: int


FAMILIES: dict[str, dict[str, BenchShape | QwenShape]] = {
    "llava": {
        "tiny": BenchShape(56, 14, 32, 1, 2, 64, 2, 4, 2, 128, 512, 60, 12),
        "1b": BenchShape(336, 14, 1024, 24, 16, 2048, 16, 32, 8, 8192, 32000, 90, 25),
        "7b": BenchShape(336, 14, 1024, 24, 16, 4096, 32, 32, 32, 11008, 32000, 90, 25),
    },
    "qwen2_5_vl": {
        "tiny": QwenShape(56, 32, 1, 2, 64, 56, (0,), 64, 2, 4, 2, 128, 512, (2, 3, 3), 60, 12),
        # Qwen2.5-VL-7B-Instruct's config.json sizes.
        "7b": QwenShape(
            672, 1280, 32, 16, 3420, 112, (7, 15, 23, 31),
            3584, 28, 28, 4, 18944, 152064, (16, 24, 24), 90, 25,
        ),
    },
}  # fmt: skip
SHAPES = FAMILIES["llava"]  # --shape (the LLaVA sizes) predates --family


WORDS = ("red green blue small large photo of a the dog cat street sky with people post about my day "
         "holiday food tree car house woman man child smiling sign text shows close up view").split()  # fmt: skip


def build(family: str, size: str, device: torch.device, dtype: torch.dtype, folder: Path):
    """Random-init model of `family` at `size` + its processor + synthetic records in `folder`."""
    shape = FAMILIES[family][size]
    builder = {"llava": _build_llava, "qwen2_5_vl": _build_qwen2_5_vl}[family]
    model, processor = builder(shape, device, dtype)
    return model, processor, _write_records(folder, shape, count=64)


def _build_llava(s: BenchShape, device: torch.device, dtype: torch.dtype):
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from modeltrain.mcmdpo.tiny import IMAGE_TOKEN, TinyShape, build_processor, build_tokenizer

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
    return model, processor


# Qwen's special tokens, and a chat template with Qwen2.5-VL's image markup (the model finds
# images, and their M-RoPE positions, by <|vision_start|>).
QWEN_SPECIAL = ["<pad>", "<unk>", "</s>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_tokenizer(texts: list[str]):
    """A word-level tokenizer with Qwen2.5-VL's special tokens (no hub download)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.normalizer = normalizers.NFKC()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(
        [*texts, "user assistant Given an image and context , generate alt - text for the . Context :"],
        trainer=trainers.WordLevelTrainer(special_tokens=QWEN_SPECIAL),
    )  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )  # fmt: skip
    tokenizer.padding_side = "left"
    return tokenizer


def qwen2_5_vl_config(s: QwenShape, tokenizer):
    """Qwen2_5_VLConfig with the shape's sizes and the tokenizer's special-token ids."""
    from transformers import Qwen2_5_VLConfig

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5_VLConfig(
        vision_config=dict(
            depth=s.vision_depth, hidden_size=s.vision_hidden, intermediate_size=s.vision_intermediate,
            num_heads=s.vision_heads, out_hidden_size=s.text_hidden, patch_size=14, spatial_merge_size=2,
            temporal_patch_size=2, window_size=s.window_size, fullatt_block_indexes=list(s.fullatt_blocks),
        ),
        text_config=dict(
            vocab_size=max(s.vocab, len(tokenizer)), hidden_size=s.text_hidden, intermediate_size=s.intermediate,
            num_hidden_layers=s.text_layers, num_attention_heads=s.text_heads, num_key_value_heads=s.text_kv_heads,
            max_position_embeddings=32768, bos_token_id=None, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            rope_parameters={"rope_type": "default", "mrope_section": list(s.mrope_section), "rope_theta": 1e6},
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip


def qwen_image_processor(s: QwenShape):
    """Qwen2-VL's image processor fixed at the shape's size (fast with torchvision, else PIL)."""
    pixels = {"shortest_edge": s.image_size**2, "longest_edge": s.image_size**2}
    try:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

        return Qwen2VLImageProcessor(size=pixels, patch_size=14, merge_size=2)
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        return Qwen2VLImageProcessorPil(size=pixels, patch_size=14, merge_size=2)


def _build_qwen2_5_vl(s: QwenShape, device: torch.device, dtype: torch.dtype):
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    from modeltrain.mcmdpo.processors import make_processor

    tokenizer = qwen_tokenizer([" ".join(WORDS)])
    # Without torchvision (the CPU machines) the processor is built without its video half.
    processor = make_processor(
        Qwen2_5_VLProcessor, image_processor=qwen_image_processor(s), tokenizer=tokenizer,
        chat_template=QWEN_TEMPLATE,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_config(s, tokenizer)).to(dtype)
    model.set_attn_implementation("sdpa")
    return model, processor


def _write_records(folder: Path, s: BenchShape | QwenShape, count: int) -> Path:
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

    if name != "trl_dpo":
        from modeltrain.mcmdpo.families import UnsupportedModel, adapter_for

        try:
            adapter_for(model.config)
        except UnsupportedModel as exc:
            return {"variant": name, "skipped": str(exc)}
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
    parser.add_argument("--family", choices=sorted(FAMILIES), default="llava")
    parser.add_argument("--size", default=None, help="tiny, 1b or 7b (what the family has)")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), help="LLaVA size (= --family llava --size)"
    )
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
    family = "llava" if opts.shape else opts.family
    size = opts.shape or opts.size or "tiny"
    if size not in FAMILIES[family]:
        parser.error(f"{family} has sizes {', '.join(FAMILIES[family])}, not {size}")
    gpu = torch.cuda.is_available() and not opts.cpu
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    header = {"family": family, "size": size, "batch": opts.batch, "device": device_name}
    results = measure(family, size, gpu=gpu, batch=opts.batch, steps=opts.steps,
                      variants=opts.variants.split(","))  # fmt: skip
    if opts.json:
        print(json.dumps({**header, "shape": size, "results": results}))
    else:
        _print_table(header, results)
    return results


def measure(
    family: str, size: str, *, gpu: bool, batch: int, steps: int, variants: list[str]
) -> list[dict]:
    """Build the model once and time each variant on it; ratios are to the trl_dpo row."""
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.modeling import prepare_trainable

    device = torch.device("cuda" if gpu else "cpu")
    dtype = torch.bfloat16 if gpu else torch.float32
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model, processor, folder = build(family, size, device, dtype, Path(tmp) / "data")
        records = read_records(folder)
        lora_only = MCMDPOConfig(
            paradigm="frozen", train_projector=False, use_lora=True, lora_r=16, lora_alpha=32
        )
        model = prepare_trainable(model, lora_only)
        args = dict(
            output_dir=str(Path(tmp) / "out"), per_device_train_batch_size=batch, max_steps=steps + 1,
            learning_rate=1e-5, logging_steps=1000, save_strategy="no", report_to=[], disable_tqdm=True,
            use_cpu=not gpu, bf16=gpu, gradient_checkpointing=gpu,
            gradient_checkpointing_kwargs={"use_reentrant": False} if gpu else None, dataloader_num_workers=0,
        )  # fmt: skip
        for name in variants:
            results.append(run_variant(name, model, processor, records, args, batch=batch))
    base = next((r for r in results if r["variant"] == "trl_dpo" and "skipped" not in r), None)
    for r in results:
        if "skipped" in r:
            continue
        r["speed_vs_trl_dpo"] = r["records_per_s"] / base["records_per_s"] if base else None
        if base and r["peak_mem_gib"] and base["peak_mem_gib"]:
            r["memory_vs_trl_dpo"] = r["peak_mem_gib"] / base["peak_mem_gib"]
        else:
            r["memory_vs_trl_dpo"] = None
    return results


def _print_table(header: dict, results: list[dict]) -> None:
    print(" ".join(f"{k}={v}" for k, v in header.items()))
    print(
        f"{'variant':28} {'s/step':>8} {'rec/s':>8} {'peak GiB':>9} {'tokens':>7} {'speed×':>7} {'mem×':>6}"
    )
    for r in results:
        if "skipped" in r:
            print(f"{r['variant']:28} skipped: {r['skipped']}")
            continue
        peak = f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] is not None else "-"
        mem = f"{r['memory_vs_trl_dpo']:.2f}" if r["memory_vs_trl_dpo"] is not None else "-"
        speed = f"{r['speed_vs_trl_dpo']:.2f}" if r["speed_vs_trl_dpo"] is not None else "-"
        print(
            f"{r['variant']:28} {r['median_step_s']:8.3f} {r['records_per_s']:8.2f} {peak:>9} "
            f"{r['tokens_per_step']:7d} {speed:>7} {mem:>6}"
        )


if __name__ == "__main__":
    main()
