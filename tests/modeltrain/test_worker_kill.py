"""The whole loop through a real gpu-queue worker, which is SIGKILLed in the middle of training.

`celery -A config worker -Q gpu --pool=solo` runs as a subprocess against the test database and
Redis. The test starts a round (round_start → on_commit → Redis), waits until the worker has
trained past a checkpoint, kills it with SIGKILL, starts a new worker, and checks that the
redelivered message resumed the round from the newest complete checkpoint and finished it once:
scores stored, a sealed final model, and each post's model candidate paired exactly once.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from modeltrain import services
from modeltrain.mcmdpo import checkpoints
from modeltrain.models import RoundStatus, TrainingRound
from preferences.models import CandidatePair

from .conftest import FAST_OPTIONS

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
VISIBILITY_S = 2  # Redis hands an unacked message to another worker after this long


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _worker(log: Path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ALTPREF_ROUNDS_DIR": settings.ALTPREF_ROUNDS["DIR"],
        "ALTPREF_ROUND_HEARTBEAT_S": "1",
        "ALTPREF_ROUND_PROGRESS_EVERY": "1",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "--pool=solo",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h",
        "--loglevel=INFO",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_for(predicate, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _clean_broker():
    """Drop leftovers of earlier runs in this test's Redis db: the gpu queue and unacked set."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("gpu", "unacked", "unacked_index", "unacked_mutex")


def test_round_survives_a_sigkilled_worker(loop_data, tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip(
            "needs CELERY_BROKER_URL=redis://…: only a real broker redelivers the message of a "
            "killed worker (the in-memory broker lives inside one process)"
        )
    _clean_broker()
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    first = _worker(logs[0], "first")
    second = None
    try:
        round_ = services.round_start(
            user=loop_data["user"],
            snapshot_id=loop_data["snapshot"].pk,
            method="mcmdpo",
            base_model="tiny",
            hyperparameters={"max_steps": 40, "save_steps": 5},
            options=FAST_OPTIONS,
        )
        rows = TrainingRound.objects.filter(pk=round_.pk)
        _wait_for(lambda: rows.get().step >= 7, 240, "training past checkpoint 5", logs)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed = rows.get()
        assert killed.status == RoundStatus.RUNNING and killed.attempts == 1
        out = Path(killed.output_dir)
        assert checkpoints.newest_complete_checkpoint(out) is not None

        time.sleep(VISIBILITY_S + 1.5)  # the message is visible again, the heartbeat stale
        second = _worker(logs[1], "second")
        done = _wait_for(lambda: rows.get().is_finished and rows.get(), 240, "the round", logs)
        assert done.status == RoundStatus.DONE, done.error
        assert done.attempts == 2  # claimed once by each worker, never twice by one message
        assert "checkpoint-" in done.resumed_from  # resumed, not restarted
        assert done.step == done.total_steps == 40
        assert [p["step"] for p in done.history] == list(range(1, 41))
        assert checkpoints.is_complete(done.checkpoint_path)
        assert done.scores["sample_count"] == 4 and "CIDEr" in done.scores

        pairs = CandidatePair.objects.filter(source="model", source_round_id=done.pk)
        assert pairs.count() == done.candidates_created
        keys = list(pairs.values_list("post_id", "alt_a__text"))
        assert len(keys) == len(set(keys))  # no duplicate candidates
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
