"""`python -m modeltrain.mcmdpo train` as real subprocesses: progress log, torchrun, SIGTERM, bad input."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.progress import ProgressReader

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "CUDA_VISIBLE_DEVICES": "",  # CPU and gloo everywhere: two processes cannot share one GPU
}
# Small, fast and learning: 2 records per process and step, LoRA, checkpoint every 2 steps.
TINY_CONFIG = {
    "per_device_batch_size": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0, "lr_scheduler": "constant",
    "lora_r": 8, "save_steps": 2, "save_total_limit": None, "beta": 1.0,
}  # fmt: skip


def train_args(snapshot, base, output, config: Path, *extra: str) -> list[str]:
    return [
        "train", "--snapshot", str(snapshot), "--base", str(base), "--method", "mcmdpo",
        "--output", str(output), "--config", str(config), *extra,
    ]  # fmt: skip


def run_cli(args: list[str], *, launcher: list[str] | None = None, timeout: int = 300):
    command = [*(launcher or [sys.executable]), "-m", "modeltrain.mcmdpo", *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def events(output: Path) -> list[dict]:
    return ProgressReader(output).new_events()


def sequence(log: list[dict]) -> list[tuple]:
    return [(e["event"], e.get("step", e.get("status"))) for e in log]


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


def test_train_writes_the_progress_log_and_a_sealed_final(
    tiny_base, synthetic_snapshot, tmp_path, config_file
):
    out = tmp_path / "run"
    done = run_cli(train_args(synthetic_snapshot, tiny_base, out, config_file, "--max-steps", "4"))
    assert done.returncode == 0, done.stderr[-4000:]

    log = events(out)
    assert sequence(log) == [
        ("start", None), ("log", 1), ("log", 2), ("checkpoint", 2), ("log", 3), ("log", 4),
        ("checkpoint", 4), ("end", "done"),
    ]  # fmt: skip
    start, end = log[0], log[-1]
    assert (
        start["world_size"] == 1 and start["method"] == "mcmdpo" and start["resumed_from"] is None
    )
    assert all(e["logs"]["records"] == 2 and e["total"] == 4 for e in log if e["event"] == "log")
    assert {"response", "image", "context"} <= set(log[1]["margins"])
    assert log[3]["path"] == str(out / "checkpoint-2")
    assert checkpoints.is_complete(out / "checkpoint-2") and checkpoints.is_complete(out / "final")
    assert end["global_step"] == 4 and end["final_dir"] == str(out / "final")

    result = json.loads((out / "result.json").read_text())
    assert result["global_step"] == 4 and result["stopped"] is False
    assert [h["step"] for h in result["history"]] == [1, 2, 3, 4]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(name: str) -> list[str]:
    """Two processes on this machine (gloo on the CPU) through torchrun or accelerate launch."""
    if name == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(free_port()),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
        "--dynamo_backend", "no",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torchrun", "accelerate"])
def test_train_with_two_processes_logs_the_global_batch_once(
    name, tiny_base, synthetic_snapshot, tmp_path, config_file
):
    out = tmp_path / "run"
    args = train_args(synthetic_snapshot, tiny_base, out, config_file, "--max-steps", "2")
    done = run_cli(args, launcher=launcher(name))
    assert done.returncode == 0, done.stderr[-4000:]

    log = events(out)
    assert sequence(log) == [
        ("start", None),
        ("log", 1),
        ("log", 2),
        ("checkpoint", 2),
        ("end", "done"),
    ]
    assert log[0]["world_size"] == 2
    # 2 records per process and step, both processes' records in every logged figure
    assert [e["logs"]["records"] for e in log if e["event"] == "log"] == [4, 4]
    assert checkpoints.is_complete(out / "final")


@pytest.mark.slow
def test_sigterm_stops_with_a_sealed_checkpoint_and_a_rerun_resumes(
    tiny_base, synthetic_snapshot, tmp_path, config_file
):
    out = tmp_path / "run"
    args = train_args(synthetic_snapshot, tiny_base, out, config_file, "--max-steps", "6")
    command = [sys.executable, "-m", "modeltrain.mcmdpo", *args]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Signal as soon as the run has started (it is loading the model, computing the reference
        # or training): it must finish its current step, save, and stop long before step 6.
        deadline = time.monotonic() + 240
        reader = ProgressReader(out)
        while not any(e["event"] == "start" for e in reader.new_events()):
            assert process.poll() is None, process.stderr.read()[-4000:]
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=240)[1]
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-4000:]

    log = events(out)
    end = log[-1]
    assert end["event"] == "end" and end["status"] == "stopped"
    stopped_at = end["global_step"]
    assert 1 <= stopped_at < 6
    assert checkpoints.is_complete(out / f"checkpoint-{stopped_at}")
    assert ("checkpoint", stopped_at) in sequence(log)
    assert json.loads((out / "result.json").read_text())["stopped"] is True

    again = run_cli(args)
    assert again.returncode == 0, again.stderr[-4000:]
    second = events(out)[len(log) :]  # a resumed run appends to the same log
    assert second[0]["event"] == "start"
    assert second[0]["resumed_from"] == str(out / f"checkpoint-{stopped_at}")
    assert [e["step"] for e in second if e["event"] == "log"] == list(range(stopped_at + 1, 7))
    assert second[-1]["status"] == "done" and second[-1]["global_step"] == 6
    assert second[-1]["resumed_from"] == str(out / f"checkpoint-{stopped_at}")


@pytest.mark.slow
def test_a_stop_file_stops_the_run_once(tiny_base, synthetic_snapshot, tmp_path, config_file):
    out = tmp_path / "run"
    out.mkdir()
    (out / "STOP").touch()  # e.g. written from another node of a shared filesystem
    done = run_cli(train_args(synthetic_snapshot, tiny_base, out, config_file, "--max-steps", "3"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert sequence(events(out)) == [
        ("start", None),
        ("log", 1),
        ("checkpoint", 1),
        ("end", "stopped"),
    ]
    assert checkpoints.is_complete(out / "checkpoint-1")
    assert not (out / "STOP").exists()  # honoured once: running the command again resumes


def bad_inputs(tmp_path: Path, snapshot: Path, base: Path) -> dict[str, tuple[list[str], str]]:
    unknown_key = tmp_path / "unknown.json"
    unknown_key.write_text(json.dumps({**TINY_CONFIG, "lerning_rate": 1e-3}))
    wrong_type = tmp_path / "wrong.json"
    wrong_type.write_text(json.dumps({"learning_rate": "fast"}))
    text_only = tmp_path / "text-only"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "llama"}))
    out = tmp_path / "out"
    return {
        "missing snapshot": (
            train_args(tmp_path / "no-such-snapshot", base, out, tmp_path / "none.json"),
            "snapshot not found",
        ),
        "unknown config key": (train_args(snapshot, base, out, unknown_key), "lerning_rate"),
        "wrong config type": (train_args(snapshot, base, out, wrong_type), "learning_rate"),
        "unsupported model": (
            train_args(snapshot, text_only, out, tmp_path / "none.json"),
            "llama",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing snapshot", "unknown config key", "wrong config type", "unsupported model"]
)
def test_bad_input_exits_2_with_one_line(case, tiny_base, synthetic_snapshot, tmp_path):
    (tmp_path / "none.json").write_text("{}")  # a valid, empty config where the case needs one
    args, expected = bad_inputs(tmp_path, synthetic_snapshot, tiny_base)[case]
    done = run_cli(args, timeout=120)
    assert done.returncode == 2, done.stderr[-4000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert not (tmp_path / "out" / "progress.jsonl").exists()  # refused before the run started
