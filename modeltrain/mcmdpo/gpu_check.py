"""GPU acceptance checks in one command (`make gpu-check`), sized for one H100/H200 in < 8 min.

    python -m modeltrain.mcmdpo.gpu_check [--base DIR] [--skip doctor,bench,fsdp] [--toy] [--json]

1. doctor: ``python -m modeltrain.mcmdpo doctor --base DIR --json`` (DIR: --base, else a tiny
   LLaVA written to a temporary folder), as a child process; passes when it exits 0.
2. bench: the 7B shapes of LLaVA-1.5 and Qwen2.5-VL (bench.py, one child process each, LoRA,
   bf16, batch 4): packed MCM-DPO against trl DPO, passing at >= 0.75x trl DPO's records/s and
   <= 1.3x its peak memory.
3. fsdp: with two or more GPUs, one full fine-tuning MCM-DPO step of a tiny LLaVA under
   ``accelerate launch`` with FSDP2 on two processes.

Without a CUDA device it prints "no CUDA device: nothing measured" and exits 0. ``--toy`` runs
the same steps at toy size on the CPU without judging the numbers (the CPU smoke test uses it so
that this script cannot rot). Exit status: 1 when a check failed (on a GPU, a check that could
not measure counts as failed: the targets need numbers), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SPEED_TARGET = 0.75  # packed MCM-DPO records/s over trl DPO's, at least
MEMORY_TARGET = 1.3  # packed MCM-DPO peak memory over trl DPO's, at most
BENCH_FAMILIES = ("llava", "qwen2_5_vl")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Child-process limits (seconds); together they stay under the 8-minute budget on one GPU.
TIMEOUTS = {"doctor": 90, "bench": 170, "fsdp": 100}

PASS, FAIL, NOT_MEASURED, SKIPPED, MEASURED = (
    "PASS",
    "FAIL",
    "NOT MEASURED",
    "SKIPPED",
    "MEASURED (toy, not judged)",
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="model folder for the doctor (default: a tiny LLaVA)")
    parser.add_argument("--skip", default="", help="comma-separated: doctor, bench, fsdp")
    parser.add_argument("--toy", action="store_true", help="toy sizes on the CPU, not judged")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    opts = parser.parse_args(argv)
    skip = {s for s in opts.skip.split(",") if s}
    if not opts.toy and not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 0
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "doctor" not in skip:
            rows.append(check_doctor(opts.base or str(_tiny_base(tmp)), tmp))
        if "bench" not in skip:
            rows += [check_bench(family, toy=opts.toy) for family in BENCH_FAMILIES]
        if "fsdp" not in skip:
            rows.append(check_fsdp(tmp, toy=opts.toy))
    _print_rows(rows)
    if opts.json:
        print(json.dumps(rows))
    failing = {FAIL} if opts.toy else {FAIL, NOT_MEASURED}
    return 1 if any(r["status"] in failing for r in rows) else 0


def _child_env() -> dict:
    # Children import this checkout's package, whatever the working folder.
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}


def _run(command: list[str], timeout: float) -> tuple[int | None, str, str]:
    """(exit code or None on timeout, stdout, stderr) of a child process."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=_child_env()
        )
    except subprocess.TimeoutExpired as exc:
        return None, _text(exc.stdout), _text(exc.stderr)
    return done.returncode, done.stdout, done.stderr


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _tiny_base(tmp: Path) -> Path:
    from modeltrain.mcmdpo.synthetic import vocabulary
    from modeltrain.mcmdpo.tiny import save_tiny_llava

    return save_tiny_llava(tmp / "tiny-llava", list(vocabulary()), seed=0)


def check_doctor(base: str, tmp: Path) -> dict:
    command = [sys.executable, "-m", "modeltrain.mcmdpo", "doctor", "--base", base, "--json"]
    code, out, err = _run(command, TIMEOUTS["doctor"])
    if code is None:
        return {"check": "doctor", "status": FAIL, "detail": f"timed out: {_tail(out + err)}"}
    if code != 0:
        return {"check": "doctor", "status": FAIL, "detail": f"exit {code}: {_tail(out + err)}"}
    checks = {c["check"]: c for c in json.loads(out)["checks"]}
    detail = f"{len(checks)} checks passed; packing: {checks['packing']['detail']}"
    return {"check": "doctor", "status": PASS, "detail": detail}


def check_bench(family: str, *, toy: bool) -> dict:
    """Packed MCM-DPO against trl DPO for one family (7B shape; tiny on the CPU with --toy)."""
    name = f"bench {family} {'tiny' if toy else '7b'}"
    command = [
        sys.executable, "-m", "modeltrain.mcmdpo.bench", "--family", family,
        "--size", "tiny" if toy else "7b", "--batch", "2" if toy else "4",
        "--steps", "1" if toy else "3", "--variants", "trl_dpo,mcm_packed", "--json",
    ]  # fmt: skip
    if toy:
        command.append("--cpu")
    code, out, err = _run(command, TIMEOUTS["bench"])
    if code != 0:
        why = "timed out" if code is None else f"exit {code}"
        return {"check": name, "status": FAIL, "detail": f"{why}: {_tail(out + err)}"}
    return bench_row(name, json.loads(out.strip().splitlines()[-1]), toy=toy)


def bench_row(name: str, report: dict, *, toy: bool) -> dict:
    """Judge one `bench.py --json` report: packed MCM-DPO against the targets."""
    rows = {r["variant"]: r for r in report["results"]}
    packed, dpo = rows.get("mcm_packed", {}), rows.get("trl_dpo", {})
    if "skipped" in packed or "skipped" in dpo or not packed or not dpo:
        why = packed.get("skipped") or dpo.get("skipped") or "a variant did not run"
        return {"check": name, "status": NOT_MEASURED, "detail": why}
    speed, memory = packed["speed_vs_trl_dpo"], packed["memory_vs_trl_dpo"]
    row = {
        "check": name,
        "device": report["device"],
        "trl_dpo_records_per_s": dpo["records_per_s"],
        "mcm_packed_records_per_s": packed["records_per_s"],
        "trl_dpo_peak_gib": dpo["peak_mem_gib"],
        "mcm_packed_peak_gib": packed["peak_mem_gib"],
        "speed_vs_trl_dpo": speed,
        "memory_vs_trl_dpo": memory,
    }
    memory_text = f"{memory:.2f}x memory" if memory is not None else "memory n/a"
    row["detail"] = (
        f"{speed:.2f}x records/s (target >= {SPEED_TARGET}), {memory_text} "
        f"(target <= {MEMORY_TARGET})"
    )
    if toy:
        row["status"] = MEASURED
    else:
        ok = speed >= SPEED_TARGET and memory is not None and memory <= MEMORY_TARGET
        row["status"] = PASS if ok else FAIL
    return row


def check_fsdp(tmp: Path, *, toy: bool) -> dict:
    """One MCM-DPO step of a tiny LLaVA, full fine-tuning, FSDP2 over two GPUs."""
    if toy or torch.cuda.device_count() < 2:
        return {"check": "fsdp 2 GPUs", "status": SKIPPED, "detail": "fewer than two GPUs"}
    from modeltrain.mcmdpo.synthetic import write_snapshot

    base, snapshot = _tiny_base(tmp), write_snapshot(tmp / "snapshot", count=8, seed=0)
    out = tmp / "fsdp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2",
        "--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
        "--mixed_precision", "bf16", "-m", "modeltrain.mcmdpo.gpu_check",
        "--fsdp-worker", str(base), str(snapshot), str(out),
    ]  # fmt: skip
    code, stdout, stderr = _run(command, TIMEOUTS["fsdp"])
    result = out / "fsdp.json"
    if code != 0 or not result.is_file():
        why = "timed out" if code is None else f"exit {code}"
        return {
            "check": "fsdp 2 GPUs",
            "status": FAIL,
            "detail": f"{why}: {_tail(stdout + stderr)}",
        }
    steps = json.loads(result.read_text())["global_step"]
    status = PASS if steps == 1 else FAIL
    return {"check": "fsdp 2 GPUs", "status": status, "detail": f"{steps} step(s) on 2 processes"}


def fsdp_worker(base: str, snapshot: str, out: str) -> None:
    """One process of the FSDP check (started by accelerate launch)."""
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.run import run_training

    config = MCMDPOConfig(
        base_model=base, max_steps=1, per_device_batch_size=2, save_steps=100,
        learning_rate=1e-5, warmup_ratio=0.0, lr_scheduler="constant",
        reference_cache_dir=f"{out}/cache",
    )  # fmt: skip
    result = run_training(config, snapshot, f"{out}/run")
    if int(os.environ.get("RANK", "0")) == 0:
        Path(out, "fsdp.json").write_text(json.dumps({"global_step": result.global_step}))


def _print_rows(rows: list[dict]) -> None:
    width = max((len(r["check"]) for r in rows), default=10)
    print(f"{'check':{width}}  {'status':26}  detail")
    for r in rows:
        print(f"{r['check']:{width}}  {r['status']:26}  {r.get('detail', '')}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--fsdp-worker":
        fsdp_worker(*sys.argv[2:5])
    else:
        sys.exit(main())
