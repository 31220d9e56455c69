"""Worker for test_mcmdpo_ddp: one process of a 2-process (gloo) MCM-DPO run.

Each process records the per-record margins it computed locally, so the test can check that
the logged figures are the mean over both processes' records.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `modeltrain`

from modeltrain.mcmdpo.cli import leave_process_group  # noqa: E402
from modeltrain.mcmdpo.config import MCMDPOConfig  # noqa: E402
from modeltrain.mcmdpo.loss import reward_margins  # noqa: E402
from modeltrain.mcmdpo.run import run_training  # noqa: E402
from modeltrain.mcmdpo.trainer import MCMDPOTrainer  # noqa: E402


def main(base: str, snapshot: str, out: str) -> None:
    rank = int(os.environ["RANK"])
    local: list[dict] = []
    original = MCMDPOTrainer._record_metrics

    def recording(self, policy, reference, z):
        margins = reward_margins(policy, reference, self.beta)
        local.append({"step": self.state.global_step + 1, "response": margins["response"].tolist(),
                      "image": margins["image"].tolist()})  # fmt: skip
        return original(self, policy, reference, z)

    MCMDPOTrainer._record_metrics = recording
    cfg = MCMDPOConfig(
        base_model=base, use_lora=True, lora_r=8, per_device_batch_size=2, max_steps=3, save_steps=3,
        learning_rate=3e-3, beta=1.0, warmup_ratio=0.0, reference_cache_dir=f"{out}/cache",
    )  # fmt: skip
    result = run_training(cfg, snapshot, f"{out}/run")
    Path(out, f"local-{rank}.json").write_text(json.dumps(local))
    if rank == 0:
        Path(out, "history.json").write_text(
            json.dumps([e["logs"] | {"step": e["step"]} for e in result.history])
        )
    leave_process_group()  # as the train CLI does: no gloo abort at exit


if __name__ == "__main__":
    main(*sys.argv[1:4])
