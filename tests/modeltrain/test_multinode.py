"""Process counts and strategies on rounds, the launch line (on one machine and on a cluster),
and attaching a finished external run to its round."""

import json
import os
import shlex
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.errors import ApplicationError
from modeltrain import services
from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.launch import LaunchError, launch_command
from modeltrain.models import RoundStatus, TrainingRound

from .conftest import FAST_OPTIONS, fast_hyperparameters

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def queued(monkeypatch):
    """Round ids sent to the gpu queue; not sent (the tests call round_run themselves)."""
    sent = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    monkeypatch.setattr(services, "_enqueue_phases", sent.append)
    return sent


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _start(loop_data, **kwargs):
    values = dict(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters=fast_hyperparameters(max_steps=4),
        options={**FAST_OPTIONS, "evaluate_base": False, "eval_limit": 2, "feedback_limit": 2},
    )
    values.update(kwargs)
    return services.round_start(**values)


# --- launch lines ------------------------------------------------------------------------------


def test_launch_command_per_strategy(tmp_path):
    common = dict(snapshot="/s", base="/b", method="dpo", output="/o", config="/o/c.json")
    one = launch_command(strategy="fsdp", processes=1, python="py", **common)
    assert one == [
        "py",
        "-m",
        "modeltrain.mcmdpo",
        "train",
        "--snapshot",
        "/s",
        "--base",
        "/b",
        "--method",
        "dpo",
        "--output",
        "/o",
        "--config",
        "/o/c.json",
    ]  # fmt: skip  (one process: the CLI itself, no launcher)

    gpu = launch_command(
        strategy="deepspeed_zero3", processes=8, nodes=4, machine_rank=2,
        main_process_ip="10.0.0.1", main_process_port=29999, python="py", **common,
    )  # fmt: skip
    line = shlex.join(gpu)
    assert line.startswith("py -m accelerate.commands.launch --config_file ")
    assert gpu[gpu.index("--config_file") + 1].endswith("launch_configs/deepspeed_zero3.yaml")
    assert "--num_processes 32 --num_machines 4 --machine_rank 2" in line
    assert "--main_process_ip 10.0.0.1 --main_process_port 29999" in line
    assert line.endswith("-m modeltrain.mcmdpo train --snapshot /s --base /b --method dpo "
                         "--output /o --config /o/c.json")  # fmt: skip
    for strategy in ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"):
        cpu = strategy.startswith("deepspeed")
        argv = launch_command(strategy=strategy, processes=2, cpu=False, **common)
        assert Path(argv[argv.index("--config_file") + 1]).is_file()  # shipped with the package
        if cpu:
            with pytest.raises(LaunchError, match="needs CUDA"):
                launch_command(strategy=strategy, processes=2, cpu=True, **common)
    # On CPU, FSDP enters through launch.py, which lets accelerate's gloo state become FSDP.
    cpu_fsdp = launch_command(
        strategy="fsdp", processes=2, cpu=True, fsdp_wrap=["A", "B"], **common
    )
    assert cpu_fsdp[cpu_fsdp.index("-m", 3) + 1] == "modeltrain.mcmdpo.launch"
    assert "--fsdp_transformer_layer_cls_to_wrap" in cpu_fsdp and "A,B" in cpu_fsdp
    with pytest.raises(LaunchError, match="unknown strategy"):
        launch_command(strategy="zero9", processes=2, **common)


@pytest.mark.django_db
def test_round_start_checks_processes_and_strategy(loop_data, queued):
    lora = _start(loop_data)
    assert (lora.processes, lora.strategy) == (None, "ddp")  # all GPUs; LoRA → DDP
    full = _start(loop_data, processes=4, hyperparameters=fast_hyperparameters(use_lora=False))
    assert (full.processes, full.strategy) == (4, "fsdp")  # full fine-tuning → FSDP2
    chosen = _start(loop_data, processes=2, strategy="deepspeed_zero2")
    assert chosen.strategy == "deepspeed_zero2"
    for bad in (dict(processes=0), dict(processes=65), dict(processes=True), dict(strategy="x")):
        with pytest.raises(ApplicationError):
            _start(loop_data, **bad)
    external = _start(loop_data, external=True)
    assert external.external and external.pk not in queued  # trained elsewhere: not queued

    api = client_for(loop_data["user"])
    url = f"/api/projects/{loop_data['project'].pk}/rounds/"
    body = {"snapshot": loop_data["snapshot"].pk, "base_model": "tiny"}
    before = TrainingRound.objects.count()
    for bad in ({"processes": 0}, {"processes": "many"}, {"strategy": "zero9"}):
        response = api.post(url, {**body, **bad}, format="json")
        assert response.status_code == 400, response.content
    assert TrainingRound.objects.count() == before
    made = api.post(url, {**body, "processes": 2, "strategy": "fsdp"}, format="json")
    assert made.status_code == 202 and made.json()["strategy"] == "fsdp"
    assert made.json()["processes"] == 2


@pytest.mark.django_db
def test_round_launch_command_and_page(loop_data, queued, client):
    round_ = _start(
        loop_data, processes=4, hyperparameters=fast_hyperparameters(max_steps=4, use_lora=False)
    )
    out, err = StringIO(), StringIO()
    call_command(
        "round_launch_command", str(round_.pk), "--nodes", "3",
        "--main-process-ip", "10.1.2.3", stdout=out, stderr=err,
    )  # fmt: skip
    line = out.getvalue().strip()
    assert "-m accelerate.commands.launch --config_file " in line
    assert "launch_configs/fsdp.yaml" in line
    assert "--num_processes 12 --num_machines 3 --machine_rank $MACHINE_RANK" in line
    assert "--main_process_ip 10.1.2.3 --main_process_port 29500" in line
    # the base model's real block classes, not LLaVA's list (it names CLIPTextEmbeddings)
    assert "--fsdp_transformer_layer_cls_to_wrap CLIPEncoderLayer" in line
    assert "CLIPTextEmbeddings" not in line
    config = Path(line.split("--config ")[1].split()[0])
    data = json.loads(config.read_text())
    cfg = MCMDPOConfig.from_dict({**data, "method": "mcmdpo", "base_model": "x"})
    assert cfg.use_lora is False and cfg.max_steps == 4
    assert f"round_attach {round_.pk}" in err.getvalue()
    with pytest.raises(CommandError, match="No round"):
        call_command("round_launch_command", "999999", "--nodes", "2")

    client.force_login(loop_data["user"])
    page = client.get(f"/rounds/{round_.pk}/").content.decode()
    assert "FSDP2 (full sharding)" in page and "--num_machines 2" in page
    assert f"round_attach {round_.pk}" in page


# --- attaching an external run -----------------------------------------------------------------


def _external_run(round_, out: Path) -> Path:
    """Train the round's config with the CLI itself, as a cluster would (one process here)."""
    prepared = services.round_launch_prepare(round_=round_, output_dir=str(out))
    argv = launch_command(
        strategy=round_.strategy,
        processes=1,
        snapshot=services.snapshot_folder(round_.snapshot),
        base=prepared["base"],
        method=round_.method,
        output=out,
        config=prepared["config"],
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.django_db(transaction=True)
def test_attach_a_finished_external_run(loop_data, queued, tmp_path):
    round_ = _start(loop_data, external=True)
    out = _external_run(round_, tmp_path / "cluster-run")
    api = client_for(loop_data["user"])
    url = f"/api/projects/{loop_data['project'].pk}/rounds/{round_.pk}/attach/"

    def refused(folder, match):
        response = api.post(url, {"output_dir": str(folder)}, format="json")
        assert response.status_code == 400 and match in response.json()["message"], response.content
        with pytest.raises(CommandError, match=match):
            call_command("round_attach", str(round_.pk), str(folder))

    refused(tmp_path / "nowhere", "is not a folder")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "has no result.json")
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(out), str(broken)], check=True)
    weights = next(p for p in (broken / "final").iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-10])  # a truncated copy
    refused(broken, "not sealed")
    assert TrainingRound.objects.get(pk=round_.pk).status == RoundStatus.QUEUED

    response = api.post(url, {"output_dir": str(out)}, format="json")
    assert response.status_code == 202, response.content
    attached = TrainingRound.objects.get(pk=round_.pk)
    assert attached.status == RoundStatus.EVALUATING and queued[-1] == round_.pk
    assert attached.checkpoint_path == str(out / "final")
    assert attached.step == attached.total_steps == 4
    assert [p["step"] for p in attached.history] == [1, 2, 3, 4]
    assert attached.world_size == 1

    # the gpu queue's message evaluates and feeds back; no training happens again
    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE
    done = TrainingRound.objects.get(pk=round_.pk)
    assert done.scores["sample_count"] == 2 and checkpoints.is_complete(done.checkpoint_path)
    assert not (out / "launch.json").exists()  # the worker launched nothing
    again = api.post(url, {"output_dir": str(out)}, format="json")
    assert again.status_code == 409  # a done round does not take another run
