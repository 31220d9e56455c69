"""Two processes (torch.distributed, gloo on the CPU): metrics in the logs cover both processes' records."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrain.mcmdpo import checkpoints


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_run_gathers_metrics_across_processes(tiny_base, synthetic_snapshot, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
        str(worker), str(tiny_base), str(synthetic_snapshot), str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]

    history = json.loads((tmp_path / "history.json").read_text())
    local = [json.loads((tmp_path / f"local-{r}.json").read_text()) for r in (0, 1)]
    assert [h["step"] for h in history] == [1, 2, 3]
    for entry in history:
        step = entry["step"]
        mine = [m for rank in local for m in rank if m["step"] == step]
        assert len(mine) == 2  # each process computed its own batch at this step
        response = [v for m in mine for v in m["response"]]
        image = [v for m in mine for v in m["image"]]
        assert entry["records"] == 4  # 2 per process, gathered
        assert entry["rewards/margins/response"] == pytest.approx(
            sum(response) / 4, rel=1e-4, abs=1e-6
        )
        assert entry["rewards/margins/image"] == pytest.approx(sum(image) / 4, rel=1e-4, abs=1e-6)
        if step > 1:  # at step 1 the policy still equals the reference: every margin is 0
            # the processes saw different records, so one process alone could not give the logged mean
            assert mine[0]["response"] != mine[1]["response"]
    assert checkpoints.is_complete(tmp_path / "run" / "checkpoint-3")
    assert checkpoints.is_complete(tmp_path / "run" / "final")
