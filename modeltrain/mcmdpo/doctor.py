"""`doctor`: can this base model be trained here? Each step of a round, once, on a tiny snapshot.

``python -m modeltrain.mcmdpo doctor --base PATH_OR_ID [--json]`` reads the model's config and
asks the family registry for an adapter, loads processor and model in fp32, then checks on a small
synthetic snapshot: the 8 MCM-DPO conditions of one record, packed against unpacked log-probs,
one generation, and one optimizer step of SFT, DPO and MCM-DPO through `run_training`. The
synthetic words may be unknown to the model's tokenizer; they become unk tokens, which is enough
to exercise the code paths. Every check runs even when another failed, except that nothing runs
without a supported, loadable model. Exit status 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PACKING_TOLERANCE = 1e-4  # fp32: packed and unpacked differ only by summation order
METHODS = ("sft", "dpo", "mcmdpo")


@dataclass
class Check:
    """One line of the report; `data` holds figures for --json (e.g. max_abs_diff)."""

    name: str
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)
    seconds: float = 0.0


class CheckFailed(Exception):
    """A check ran but its result is wrong (the message is the detail)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="base model: local folder or Hugging Face id")
    parser.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    parser.add_argument(
        "--lora",
        action="store_true",
        help="train LoRA adapters in the training checks (default: full fine-tuning)",
    )


def doctor_command(args: argparse.Namespace) -> int:
    _one_device()
    # Library output (trainer logs, warnings printed to stdout) goes to stderr, so stdout carries
    # only the report and --json stays parseable.
    with contextlib.redirect_stdout(sys.stderr):
        checks = run_checks(args.base, lora=args.lora)
    ok = all(c.ok for c in checks)
    if args.json:
        report = {
            "base": args.base,
            "ok": ok,
            "checks": [
                {"check": c.name, "ok": c.ok, "detail": c.detail, "seconds": c.seconds, **c.data}
                for c in checks
            ],
        }
        print(json.dumps(report, indent=1))
    else:
        print(format_table(checks))
        print(f"\n{args.base}: {'ready to train' if ok else 'NOT ready'}")
    return 0 if ok else 1


def _one_device() -> None:
    """Check on one GPU: with several visible, transformers' Trainer would use nn.DataParallel,
    which the packed batches do not support. Must run before CUDA is initialised."""
    if "WORLD_SIZE" in os.environ:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = "0" if visible is None else visible.split(",")[0]


def format_table(checks: list[Check]) -> str:
    rows = [("check", "result", "detail")] + [
        (c.name, "ok" if c.ok else "FAILED", c.detail) for c in checks
    ]
    width = [max(len(r[i]) for r in rows) for i in (0, 1)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows)


def run_checks(base: str, *, lora: bool = False) -> list[Check]:
    """Every check in order; stops early only when the model is unsupported or does not load."""
    checks: list[Check] = []
    _run(checks, "family", lambda: _family(base))
    if not checks[-1].ok:
        return checks
    loaded = _run(checks, "load", lambda: _load(base))
    if not checks[-1].ok:
        return checks
    with tempfile.TemporaryDirectory(prefix="altpref-doctor-") as tmp:
        snapshot = _snapshot(Path(tmp) / "snapshot")
        _model_checks(checks, *loaded, snapshot)
        # run_training loads its own copy: free this one first so a large model fits twice over.
        del loaded
        _free_memory()
        for method in METHODS:
            out = Path(tmp) / f"train-{method}"
            _run(
                checks,
                f"train_{method}",
                lambda m=method, o=out: _train(base, m, snapshot, o, lora),
            )
            _free_memory()
    return checks


def _model_checks(checks: list[Check], model, processor, snapshot: Path) -> None:
    """The checks that use the loaded model itself (its last reference ends with this call)."""
    _run(checks, "conditions", lambda: _conditions(processor, snapshot))
    _run(checks, "packing", lambda: _packing(model, processor, snapshot))
    _run(checks, "generate", lambda: _generate(model, processor, snapshot))


def _run(checks: list[Check], name: str, body: Callable[[], tuple[str, dict, object]]):
    """Run one check, record ok/FAILED with its reason; returns the body's value (None on failure)."""
    start = time.monotonic()
    try:
        detail, data, value = body()
    except Exception as exc:  # one failing check must not stop the others
        checks.append(Check(name, False, _reason(exc), seconds=_since(start)))
        return None
    checks.append(Check(name, True, detail, data, seconds=_since(start)))
    return value


def _since(start: float) -> float:
    return round(time.monotonic() - start, 2)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line, however the library formats its message
    if isinstance(exc, CheckFailed):
        return text
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- the checks: each returns (detail, data, value) and raises with the reason on failure --------


def _family(base: str):
    from transformers import AutoConfig

    from modeltrain.mcmdpo.families import adapter_for

    model_config = AutoConfig.from_pretrained(base)
    adapter_for(model_config)  # raises UnsupportedModel with the reason
    model_type = getattr(model_config, "model_type", "?")
    return f"{model_type}: supported", {"model_type": model_type}, None


def _load(base: str):
    import torch

    from modeltrain.mcmdpo.modeling import load_model_and_processor

    model, processor = load_model_and_processor(base, torch.float32)
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    detail = f"{type(model).__name__}, {params / 1e6:.1f}M parameters, fp32"
    return detail, {"parameters": params}, (model, processor)


def _snapshot(folder: Path) -> Path:
    from modeltrain.mcmdpo.synthetic import write_snapshot

    return write_snapshot(folder, count=4, seed=0)


def _dataset(processor, snapshot: Path):
    from modeltrain.mcmdpo.data import PreferenceDataset
    from modeltrain.mcmdpo.formats import read_records

    return PreferenceDataset(read_records(snapshot), processor)


def _conditions(processor, snapshot: Path):
    example = _dataset(processor, snapshot)[0]
    lengths = [example.sequence(c, i, r)[0] for c in (0, 1) for i in (0, 1) for r in (0, 1)]
    if len(lengths) != 8 or any(len(ids) == 0 for ids in lengths):
        raise CheckFailed("a condition has no tokens")
    if not example.image_ids[0]:
        raise CheckFailed("the prompt has no image tokens")
    image_tokens = len(example.image_ids[0])
    detail = (
        f"8 conditions, {image_tokens} image tokens, "
        f"{min(map(len, lengths))}-{max(map(len, lengths))} tokens each"
    )
    return detail, {"image_tokens": image_tokens}, None


def _packing(model, processor, snapshot: Path):
    import torch

    from modeltrain.mcmdpo.packing import condition_logps, packed_layout, unpacked_layout

    dataset = _dataset(processor, snapshot)
    examples = [dataset[0], dataset[1]]
    pad = processor.tokenizer.pad_token_id
    device = next(model.parameters()).device
    with torch.no_grad():
        packed_layout_ = packed_layout(examples, pad)
        unpacked_layout_ = unpacked_layout(examples, pad)
        packed = condition_logps(model, packed_layout_.to(device)).float()
        unpacked = condition_logps(model, unpacked_layout_.to(device)).float()
    diff = (packed - unpacked).abs().max().item()
    data = {
        "max_abs_diff": diff,
        "packed_tokens": packed_layout_.num_tokens,
        "unpacked_tokens": unpacked_layout_.num_tokens,
    }
    if not math.isfinite(diff) or not torch.isfinite(unpacked).all():
        raise CheckFailed(f"log-probs are not finite (max abs difference {diff})")
    if diff > PACKING_TOLERANCE:
        raise CheckFailed(
            f"packed and unpacked log-probs differ by {diff:.2e} > {PACKING_TOLERANCE:g}: "
            "the family's attention or position ids do not follow the packed mask"
        )
    detail = (
        f"max abs difference {diff:.1e} <= {PACKING_TOLERANCE:g} "
        f"({data['packed_tokens']} packed vs {data['unpacked_tokens']} tokens)"
    )
    return detail, data, None


def _generate(model, processor, snapshot: Path):
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.generate import generate_alt_texts

    record = read_records(snapshot)[0]
    (text,) = generate_alt_texts(
        model, processor, [(record.image_path, record.context)], num_beams=1, max_new_tokens=8
    )
    return f"{text!r} (8 new tokens at most, greedy)", {"text": text}, None


def _train(base: str, method: str, snapshot: Path, output: Path, lora: bool):
    from modeltrain.mcmdpo import checkpoints
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.run import run_training

    config = MCMDPOConfig(
        base_model=base,
        method=method,
        use_lora=lora,
        learning_rate=1e-7,  # one step that must run, not move the model anywhere
        max_steps=1,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        save_steps=1_000_000,  # no intermediate checkpoint; the sealed `final` is still written
        logging_steps=1,
        resume=False,
    )
    result = run_training(config, snapshot, output)
    logs = result.last_metrics
    loss, grad_norm = logs.get("loss"), logs.get("grad_norm")
    if result.global_step != 1:
        raise CheckFailed(f"ran {result.global_step} steps instead of 1")
    if loss is None or not math.isfinite(loss):
        raise CheckFailed(f"loss is {loss}")
    if grad_norm is not None and not (math.isfinite(grad_norm) and grad_norm > 0):
        raise CheckFailed(f"gradient norm is {grad_norm}: nothing is learning")
    if result.final_dir is None or not checkpoints.is_complete(result.final_dir):
        raise CheckFailed("the final model was not sealed")
    norm = f", grad norm {grad_norm:.3g}" if grad_norm is not None else ""
    detail = f"1 step, loss {loss:.4f}{norm}, final sealed ({'LoRA' if lora else 'full'})"
    return detail, {"loss": loss, "grad_norm": grad_norm}, None


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
