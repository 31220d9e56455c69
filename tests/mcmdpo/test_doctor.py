"""`python -m modeltrain.mcmdpo doctor`: passes on the tiny LLaVA, refuses a family without an adapter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
ALL_CHECKS = [
    "family", "load", "conditions", "packing", "generate", "train_sft", "train_dpo", "train_mcmdpo",
]  # fmt: skip


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modeltrain.mcmdpo", "doctor", *args],
        cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_doctor_passes_on_the_tiny_llava(tiny_base):
    done = doctor("--base", str(tiny_base), "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = json.loads(done.stdout)  # stdout is the JSON object alone
    checks = {c["check"]: c for c in report["checks"]}
    assert report["ok"] is True and list(checks) == ALL_CHECKS
    assert all(c["ok"] for c in checks.values()), checks
    assert 0 <= checks["packing"]["max_abs_diff"] <= 1e-4
    assert checks["packing"]["packed_tokens"] < checks["packing"]["unpacked_tokens"]
    assert isinstance(checks["generate"]["text"], str)
    for method in ("sft", "dpo", "mcmdpo"):
        assert checks[f"train_{method}"]["grad_norm"] > 0


@pytest.mark.parametrize(
    "model_type, reason",
    [
        ("llama", "UnsupportedModel"),  # text-only, so never a VLM adapter; loads as a config
        ("not-a-real-family", "not-a-real-family"),  # transformers itself does not know it
    ],
)
def test_doctor_refuses_a_family_without_an_adapter(model_type, reason, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    done = doctor("--base", str(tmp_path), "--json")
    assert done.returncode == 1, done.stdout + done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["ok"] is False
    # the family check fails with its reason, and nothing runs on a model that cannot train
    assert [(c["check"], c["ok"]) for c in report["checks"]] == [("family", False)]
    detail = report["checks"][0]["detail"]
    assert reason in detail and model_type in detail


def test_doctor_prints_a_table_with_the_reason(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    done = doctor("--base", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr[-4000:]
    header, row = done.stdout.splitlines()[:2]
    assert header.split() == ["check", "result", "detail"]
    assert row.split()[:2] == ["family", "FAILED"] and "'llama'" in row
    assert "NOT ready" in done.stdout
