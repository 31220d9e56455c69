"""The GPU check script on the CPU: it says it measured nothing, and its bench path runs at toy
size, so the script that runs on the GPU box cannot rot unnoticed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeltrain.mcmdpo import bench, gpu_check

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cuda_visible: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    command = [sys.executable, "-m", "modeltrain.mcmdpo.gpu_check", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_without_cuda_nothing_is_measured():
    done = _run(cuda_visible="")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "no CUDA device: nothing measured"


def test_the_bench_path_runs_at_toy_size():
    done = _run("--toy", "--skip", "doctor,fsdp", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    rows = {r["check"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}
    llava = rows["bench llava tiny"]
    assert llava["status"] == gpu_check.MEASURED
    assert llava["trl_dpo_records_per_s"] > 0 and llava["mcm_packed_records_per_s"] > 0
    assert llava["speed_vs_trl_dpo"] > 0
    # Qwen2.5-VL is measured where its processor can be built (torchvision), else says why.
    qwen = rows["bench qwen2_5_vl tiny"]
    assert qwen["status"] in (gpu_check.MEASURED, gpu_check.NOT_MEASURED)
    if qwen["status"] == gpu_check.NOT_MEASURED:
        assert qwen["detail"]
    assert "bench llava tiny" in done.stdout and "speed_vs_trl_dpo" in done.stdout


def test_a_bench_that_misses_its_targets_fails():
    """The pass/fail rule on a report as bench.py writes it: 0.8x speed and 1.2x memory pass,
    0.6x speed or 1.5x memory fail; a report without a packed row has not measured."""
    for speed, memory, status in [(0.8, 1.2, "PASS"), (0.6, 1.2, "FAIL"), (0.8, 1.5, "FAIL")]:
        report = {
            "device": "H200",
            "results": [
                {"variant": "trl_dpo", "records_per_s": 10.0, "peak_mem_gib": 20.0},
                {"variant": "mcm_packed", "records_per_s": 10.0 * speed,
                 "peak_mem_gib": 20.0 * memory, "speed_vs_trl_dpo": speed,
                 "memory_vs_trl_dpo": memory},
            ],
        }  # fmt: skip
        assert gpu_check.bench_row("b", report, toy=False)["status"] == status
    skipped = {"results": [{"variant": "trl_dpo"}, {"variant": "mcm_packed", "skipped": "no"}]}
    assert gpu_check.bench_row("b", skipped, toy=False)["status"] == gpu_check.NOT_MEASURED


@pytest.mark.parametrize(
    ("family", "low", "high"),
    [("llava", 7.0e9, 7.1e9), ("qwen2_5_vl", 8.2e9, 8.35e9)],  # LLaVA-1.5-7B, Qwen2.5-VL-7B
)
def test_7b_shapes_have_the_real_models_sizes(family, low, high):
    """Built on the meta device (no memory): the parameter count is the published model's."""
    shape = bench.FAMILIES[family]["7b"]
    if family == "llava":
        model, _ = bench._build_llava(shape, torch.device("meta"), torch.bfloat16)
    else:
        from transformers import Qwen2_5_VLForConditionalGeneration

        config = bench.qwen2_5_vl_config(shape, bench.qwen_tokenizer([" ".join(bench.WORDS)]))
        with torch.device("meta"):
            model = Qwen2_5_VLForConditionalGeneration(config)
    count = sum(p.numel() for p in model.parameters())
    assert low < count < high, count


def test_tiny_qwen2_5_vl_runs_on_the_cpu():
    """The Qwen2.5-VL shape code builds a model that takes its image processor's output."""
    from PIL import Image
    from transformers import Qwen2_5_VLForConditionalGeneration

    shape = bench.FAMILIES["qwen2_5_vl"]["tiny"]
    tokenizer = bench.qwen_tokenizer([" ".join(bench.WORDS)])
    model = Qwen2_5_VLForConditionalGeneration(bench.qwen2_5_vl_config(shape, tokenizer))
    image = Image.new("RGB", (shape.image_size, shape.image_size), (200, 30, 30))
    pixels = bench.qwen_image_processor(shape)(images=[image], return_tensors="pt")
    tokens = (shape.image_size // 28) ** 2
    assert int(pixels["image_grid_thw"].prod()) // 4 == tokens
    ids = tokenizer.convert_tokens_to_ids(
        ["<|im_start|>", "<|vision_start|>", *["<|image_pad|>"] * tokens, "<|vision_end|>", "red"]
    )
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), **pixels).logits
    assert logits.shape[:2] == (1, len(ids)) and torch.isfinite(logits).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_on_cuda_reports_peak_memory():
    results = bench.measure(
        "llava", "tiny", gpu=True, batch=2, steps=1, variants=["trl_dpo", "mcm_packed"]
    )
    for row in results:
        assert row["peak_mem_gib"] > 0 and row["memory_vs_trl_dpo"] > 0, row
