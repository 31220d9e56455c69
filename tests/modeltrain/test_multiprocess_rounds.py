"""Multi-process rounds through a real gpu-queue worker, on the CPU with gloo.

The worker (`celery -A config worker -Q gpu --pool=solo`, as in test_worker_kill) launches the
`train` CLI as a child process group under `accelerate launch`; these tests check what a user
sees in the round row and on disk, and that no training process outlives the round.
"""

import json
import signal
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from modeltrain import services
from modeltrain.mcmdpo import checkpoints
from modeltrain.mcmdpo.progress import ProgressReader
from modeltrain.models import RoundStatus, TrainingRound
from preferences.models import CandidatePair

from .test_worker_kill import VISIBILITY_S, _clean_broker, _wait_for, _worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
OPTIONS = {
    "max_new_tokens": 8,
    "num_beams": 1,
    "eval_limit": 2,
    "feedback_limit": 2,
    "evaluate_base": False,
}


@pytest.fixture
def worker(loop_data, tmp_path):
    """Starts gpu workers on demand; stops whatever is left at the end."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip(
            "needs CELERY_BROKER_URL=redis://…: a real worker in another process needs a real "
            "broker (the in-memory one lives inside one process)"
        )
    _clean_broker()
    procs, logs = [], []

    def start(name: str):
        logs.append(tmp_path / f"{name}.log")
        procs.append(_worker(logs[-1], name))
        return procs[-1]

    start.logs = logs
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - best effort cleanup
                proc.kill()


def _tree(pid: int) -> list[int]:
    """A launcher and every process under it (torchrun puts each trainer in its own session)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def _alive(pids: list[int]) -> list[str]:
    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{pid} {proc.status()} {proc.cmdline()[:3]}")
        except psutil.Error:
            continue
    return found


def _all_gone(pids: list[int], timeout: float = 20.0) -> bool:
    """No process of `pids` is left within `timeout`. stop_group returns once none trains into
    the folder; a process in the middle of exiting has already released its memory, so it no
    longer shows the run's environment, but it can take a moment on a loaded machine before it
    is a zombie (CI once read one as still alive right after the cancel)."""
    deadline = time.monotonic() + timeout
    while _alive(pids):
        if time.monotonic() >= deadline:
            print("still alive:", _alive(pids))
            return False
        time.sleep(0.2)
    return True


def _nothing_trains_into(out: Path) -> bool:
    mark = str(out.resolve())
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("ALTPREF_TRAIN_RUN") == mark and proc.status() != "zombie":
                return False
        except psutil.Error:
            continue
    return True


def _launch_record(out: Path) -> dict:
    return json.loads((out / "launch.json").read_text())


def _events(out: Path) -> list[dict]:
    return ProgressReader(out).new_events()


def _finished(rows):
    row = rows.get()
    return row if row.is_finished else None


def _assert_trained_in_two_processes(done: TrainingRound, steps: int):
    assert done.status == RoundStatus.DONE, done.error
    assert done.world_size == 2
    assert done.step == done.total_steps == steps
    assert [p["step"] for p in done.history] == list(range(1, steps + 1))
    assert "image" in done.history[-1]["margins"]
    out = Path(done.output_dir)
    starts = [e for e in _events(out) if e["event"] == "start"]
    assert starts and all(e["world_size"] == 2 for e in starts)
    assert checkpoints.is_complete(out / f"checkpoint-{steps}")
    assert checkpoints.is_complete(done.checkpoint_path)
    assert done.scores["sample_count"] == 2
    assert _nothing_trains_into(out)


def test_two_process_ddp_round(loop_data, worker):
    worker("ddp")
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters={"max_steps": 4, "save_steps": 2, "per_device_batch_size": 2},
        options=OPTIONS,
        processes=2,
    )
    assert round_.strategy == "ddp"  # LoRA: every process holds the frozen model
    rows = TrainingRound.objects.filter(pk=round_.pk)
    done = _wait_for(lambda: _finished(rows), 300, "the DDP round", worker.logs)
    _assert_trained_in_two_processes(done, 4)
    assert "accelerate.commands.launch" in _launch_record(Path(done.output_dir))["argv"]


def test_two_process_fsdp_round(loop_data, worker):
    worker("fsdp")
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters={
            "max_steps": 4,
            "save_steps": 2,
            "per_device_batch_size": 2,
            "use_lora": False,
            "learning_rate": 1e-4,
        },
        options=OPTIONS,
        processes=2,
    )
    assert round_.strategy == "fsdp"  # the default for full fine-tuning on more than one process
    rows = TrainingRound.objects.filter(pk=round_.pk)
    done = _wait_for(lambda: _finished(rows), 300, "the FSDP round", worker.logs)
    _assert_trained_in_two_processes(done, 4)
    # Sharded for real: accelerate wrote FSDP state, not a DDP model + optimizer.pt (on CPU,
    # accelerate alone would have silently trained this as DDP).
    checkpoint = Path(done.output_dir) / "checkpoint-4"
    assert (checkpoint / "pytorch_model_fsdp.bin").is_file()
    assert not (checkpoint / "optimizer.pt").exists()


def test_sigkilled_worker_round_resumes_in_a_new_group(loop_data, worker):
    first = worker("first")
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters={"max_steps": 24, "save_steps": 3, "per_device_batch_size": 2},
        options=OPTIONS,
        processes=2,
    )
    rows = TrainingRound.objects.filter(pk=round_.pk)
    _wait_for(lambda: rows.get().step >= 5, 300, "training past checkpoint 3", worker.logs)
    out = Path(rows.get().output_dir)
    orphan = _launch_record(out)["pgid"]
    orphans = _tree(orphan)
    assert len(orphans) >= 3  # launcher + 2 trainers
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert rows.get().status == RoundStatus.RUNNING

    time.sleep(VISIBILITY_S + 1.5)  # the message is visible again, the heartbeat stale
    worker("second")
    done = _wait_for(lambda: _finished(rows), 300, "the resumed round", worker.logs)
    assert done.attempts == 2, done.error
    assert "checkpoint-" in done.resumed_from  # resumed, not restarted
    assert _launch_record(out)["pgid"] != orphan  # a new group trained the rest
    assert _all_gone(orphans)
    _assert_trained_in_two_processes(done, 24)
    pairs = CandidatePair.objects.filter(source="model", source_round_id=done.pk)
    # One pair per post and text (the round's model and its base model may each add one).
    keys = list(pairs.values_list("post_id", "alt_a__text"))
    assert len(keys) == len(set(keys)) == done.candidates_created


def test_cancel_ends_the_whole_group(loop_data, worker):
    worker("cancel")
    round_ = services.round_start(
        user=loop_data["user"],
        snapshot_id=loop_data["snapshot"].pk,
        method="mcmdpo",
        base_model="tiny",
        hyperparameters={"max_steps": 500, "save_steps": 50, "per_device_batch_size": 2},
        options=OPTIONS,
        processes=2,
    )
    rows = TrainingRound.objects.filter(pk=round_.pk)
    _wait_for(lambda: rows.get().step >= 2, 300, "training to start", worker.logs)
    out = Path(rows.get().output_dir)
    members = _tree(_launch_record(out)["pgid"])
    assert len(members) >= 3  # launcher + 2 trainers
    services.round_cancel(user=loop_data["user"], round_id=round_.pk)
    done = _wait_for(lambda: _finished(rows), 120, "the cancel", worker.logs)
    assert done.status == RoundStatus.CANCELLED
    assert _all_gone(members) and _nothing_trains_into(out)
    assert checkpoints.newest_complete_checkpoint(out) is not None  # stopped with a checkpoint
    assert done.step < 500


# --- the same child process path without a broker (runs on the SQLite default too) ------------


@pytest.fixture
def not_sent(monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda round_id: None)


def test_two_process_round_and_cancel_in_process(loop_data, not_sent):
    """round_run as the task calls it, in this process: a 2-process round, then a cancel."""
    import threading

    def start(max_steps: int):
        return services.round_start(
            user=loop_data["user"],
            snapshot_id=loop_data["snapshot"].pk,
            method="mcmdpo",
            base_model="tiny",
            hyperparameters={"max_steps": max_steps, "save_steps": 2, "per_device_batch_size": 2},
            options=OPTIONS,
            processes=2,
        )

    round_ = start(4)
    assert services.round_run(round_id=round_.pk) == RoundStatus.DONE
    _assert_trained_in_two_processes(TrainingRound.objects.get(pk=round_.pk), 4)

    long = start(500)
    rows = TrainingRound.objects.filter(pk=long.pk)
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(services.round_run(round_id=long.pk)))
    runner.start()
    try:
        _wait_for(lambda: rows.get().step >= 2, 300, "training to start", [])
        out = Path(rows.get().output_dir)
        members = _tree(_launch_record(out)["pgid"])
        assert len(members) >= 3  # launcher + 2 trainers
        services.round_cancel(user=loop_data["user"], round_id=long.pk)
    finally:
        runner.join(timeout=120)
    assert outcome == [RoundStatus.CANCELLED]
    assert _all_gone(members) and _nothing_trains_into(out)
    assert checkpoints.newest_complete_checkpoint(out) is not None
