"""The fault-injection scenario (issue 19): private PostgreSQL and Redis, the real web server, a
real Celery worker (with beat: the job sweep), raters submitting through HTTP, and each job type
(snapshot export, LLM run, training round) while Redis and PostgreSQL are stopped and restarted
and the worker is SIGKILLed mid-job.

    python -m tests.faults.scenario [--keep DIR]

Prints a table of the faults injected and what survived; exits 1 when a check fails. Run by
tests/faults/test_faults.py in CI's PostgreSQL pass.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

from .services import Postgres, Redis, tools_missing, web, worker

PG_PORT, REDIS_PORT, WEB_PORT = 55410, 55411, 55412
RATERS = 4
PAIRS = 800


class Scenario:
    def __init__(self, root: Path):
        self.root = root
        self.pg = Postgres(root, PG_PORT)
        self.redis = Redis(root, REDIS_PORT)
        self.faults: list[tuple[str, str]] = []  # (fault, what survived)
        self.failures: list[str] = []
        self.stop_raters = threading.Event()
        self.acked = self.errors = self.errored_submits = self.server_errors = 0
        self.lock = threading.Lock()
        self.secret_key = secrets.token_urlsafe(50)
        self.error_samples: list[str] = []

    # --- setup ---------------------------------------------------------------------------

    def env(self) -> dict:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.pg.url(),
            "CELERY_BROKER_URL": self.redis.url(0),
            "CELERY_RESULT_BACKEND": self.redis.url(1),
            "CACHE_URL": self.redis.url(2),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MEDIA_ROOT": str(self.root / "media"),
            "SECRET_KEY": self.secret_key,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "0",
            # Fast enough to watch in a test: dead after 6 s without a heartbeat, swept every 2 s.
            "ALTPREF_JOB_HEARTBEAT_S": "1",
            "ALTPREF_JOB_STALE_S": "6",
            "ALTPREF_JOB_SWEEP_S": "2",
            "ALTPREF_JOB_SEND_GRACE_S": "1",
            "ALTPREF_ROUND_HEARTBEAT_S": "2",
            "GEMINI_API_KEY": "fault-suite",
            "GEMINI_BASE_URL": self.gemini_url,
            "GEMINI_RPM": "100000",
            "GEMINI_BATCH_SIZE": "3",
            "GEMINI_RETRY_BASE_DELAY_S": "0.05",
            "HF_HUB_OFFLINE": "1",
        }

    def setup(self) -> None:
        from preferences.labelers.fake_gemini import FakeGemini

        self.gemini = FakeGemini(slow_seconds=0.4)
        self.gemini.default = "slow"  # a run long enough to kill its worker mid-way
        self.gemini_url = self.gemini.start()
        self.pg.init()
        self.redis.start()
        os.environ.update(self.env())
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self._data()

    def _data(self) -> None:
        import hashlib

        from django.contrib.auth import get_user_model

        from annotate.models import AltText, Role
        from annotate.services import membership_set
        from benchmarks.rating import Command as Bench

        bench = Bench()
        self.project, self.raters = bench._setup(raters=RATERS, n_pairs=PAIRS, overlap=RATERS)
        admin = get_user_model().objects.create_user("fault-admin", password="x")
        membership_set(project=self.project, user=admin, role=Role.ADMIN)
        for post in self.project.posts.order_by("id")[:24]:  # what the LLM run corrects
            text = f"a red sqare on teh page {post.pk}"
            AltText.objects.create(
                post=post,
                text=text,
                text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                origin="user-written",
            )
        self.sessions = [bench._session_for(u, self.project) for u in self.raters]
        from rest_framework.authtoken.models import Token

        self.admin_token = Token.objects.create(user=admin).key
        self.bench = bench

    # --- HTTP ----------------------------------------------------------------------------

    def client(self, session: str):
        from benchmarks.rating import _HTTPClient

        csrf = secrets.token_hex(16)
        return _HTTPClient(
            WEB_PORT,
            {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf,
             "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, float]:
        from benchmarks.rating import _HTTPClient

        conn = _HTTPClient(
            WEB_PORT,
            {"Authorization": f"Token {self.admin_token}", "Content-Type": "application/json"},
        )
        t0 = time.monotonic()
        try:
            status, text = conn.request(method, path, json.dumps(body) if body else "")
        finally:
            conn.close()
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {"raw": text[:200]}
        return status, data, time.monotonic() - t0

    def rater(self, session: str) -> None:
        import random

        from benchmarks.rating import ROW_RE, SUBMIT_RE

        conn = self.client(session)
        while not self.stop_raters.is_set():
            submitting = False
            try:
                status, body = conn.request("GET", f"/projects/{self.project.pk}/rate/next/")
                match = SUBMIT_RE.search(body)
                if status != 200 or not match:
                    if status >= 500 and status != 503:
                        with self.lock:
                            self.server_errors += 1
                    raise ValueError(f"next {status}")
                form = "&".join(
                    f"facet-{k}={random.choice(['A', 'B', 'tie'])}"
                    for k in dict.fromkeys(ROW_RE.findall(body))
                )
                submitting = True
                status, _ = conn.request("POST", f"/rate/items/{match.group(1)}/submit/", form)
                if status not in (302, 303):
                    if status >= 500 and status != 503:
                        with self.lock:
                            self.server_errors += 1
                    raise ValueError(f"submit {status}")
                with self.lock:
                    self.acked += 1
                time.sleep(0.05)  # a rater reads the next item; leaves CPU to the worker
            except (OSError, ValueError, IndexError) as exc:
                with self.lock:
                    self.errors += 1
                    if len(self.error_samples) < 5:
                        self.error_samples.append(repr(exc))
                    self.errored_submits += submitting
                conn.close()
                time.sleep(0.2)
        conn.close()

    # --- the run -------------------------------------------------------------------------

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
        return ok

    def wait(self, what: str, test, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if test():
                    return True
            except Exception:  # noqa: BLE001 - a dependency may still be coming back
                pass
            time.sleep(0.5)
        return self.check(False, f"timed out after {timeout:.0f} s: {what}")

    def run(self) -> None:
        from django.db import connection

        from modeltrain.models import TrainingRound
        from preferences.labelers.models import LabelRun
        from snapshots.models import Snapshot

        env = self.env()
        logs = self.root / "logs"
        logs.mkdir()
        self.web = web(env, WEB_PORT, logs / "web.log")
        self.worker = worker(env, self.root, logs / "worker-1.log")
        self.wait("worker ready", lambda: "ready." in (logs / "worker-1.log").read_text(), 60)
        raters = [
            threading.Thread(target=self.rater, args=(s,), daemon=True) for s in self.sessions
        ]
        for t in raters:
            t.start()
        p = self.project.pk

        # Jobs while everything is up.
        status, snap1, _ = self.api("POST", f"/api/projects/{p}/snapshots/", {"kind": "palt"})
        self.check(status == 202, f"snapshot start: {status} {snap1}")
        status, run, _ = self.api("POST", f"/api/projects/{p}/llm-runs/", {"task": "correct"})
        self.check(status == 201, f"LLM run start: {status} {run}")
        time.sleep(3)

        # 1. Redis down for 5 s with raters and jobs flowing; jobs started meanwhile.
        self.redis.stop()
        t_down = time.monotonic()
        time.sleep(1)
        status, snap2, took = self.api("POST", f"/api/projects/{p}/snapshots/", {"kind": "talt"})
        queued_ok = self.check(
            status == 202 and "queue is back" in snap2.get("notice", "") and took < 10,
            f"snapshot start with Redis down: {status} in {took:.1f} s {snap2}",
        )
        snapshot_ids = [snap1.get("id"), snap2.get("id")]
        round_status, round_, took_r = self.api(
            "POST", f"/api/projects/{p}/rounds/", {"snapshot": snap1.get("id")}
        )
        time.sleep(max(0.0, 5 - (time.monotonic() - t_down)))
        self.redis.start()
        survived = self.wait("worker alive after the Redis outage", self.worker.alive, 8)
        self.wait(
            "worker reconnected",
            lambda: (logs / "worker-1.log").read_text().count("Connected to redis") >= 2,
            30,
        )
        self.faults.append(
            (
                "Redis stopped 5 s (raters, LLM run, snapshot flowing)",
                f"worker {'alive, reconnected' if survived else 'DIED'}; snapshot started "
                f"meanwhile: {status} in {took:.1f} s, "
                f"{'queued for the sweep' if queued_ok else 'NOT queued'}; round start "
                f"{round_status} in {took_r:.1f} s",
            )
        )

        # 2. SIGKILL the worker in the middle of the LLM run; a new one takes it over.
        run_id = run.get("id")
        self.wait(
            "LLM run under way",
            lambda: LabelRun.objects.get(pk=run_id).done >= 3,
            40,
        )
        connection.close()
        before = LabelRun.objects.get(pk=run_id)
        self.worker.kill()
        killed_at = time.monotonic()
        self.worker = worker(env, self.root, logs / "worker-2.log")
        resumed = self.wait(
            "LLM run taken over after SIGKILL",
            lambda: LabelRun.objects.get(pk=run_id).done > before.done,
            60,
        )
        takeover = time.monotonic() - killed_at
        self.faults.append(
            (
                f"worker SIGKILLed mid LLM run (done {before.done}/{before.total})",
                f"run taken over in {takeover:.0f} s" if resumed else "run NOT taken over",
            )
        )

        # 3. PostgreSQL down for 4 s with raters submitting.
        acked_before = self.acked
        self.pg.stop()
        time.sleep(4)
        self.pg.start()
        connection.close()
        time.sleep(3)
        self.faults.append(
            (
                "PostgreSQL stopped 4 s (raters submitting)",
                f"raters went on: {self.acked - acked_before} acknowledged around it",
            )
        )
        self.stop_raters.set()
        for t in raters:
            t.join(15)

        # Every job finishes (or fails with a message); the round is cancelled once claimed.
        round_id = round_.get("id")
        if self.check(round_status == 202, f"round start: {round_status} {round_}"):
            claimed = self.wait(
                "round claimed after Redis came back",
                lambda: TrainingRound.objects.get(pk=round_id).status != "queued",
                60,
            )
            if claimed:
                self.api("POST", f"/api/rounds/{round_id}/cancel/")
        self.wait(
            "every job finished",
            lambda: (
                not Snapshot.objects.filter(status__in=["pending", "running"]).exists()
                and LabelRun.objects.get(pk=run_id).is_finished
                and TrainingRound.objects.get(pk=round_id).is_finished
            ),
            120,
        )
        self.results(snapshot_ids, run_id, round_id)

    def results(self, snapshot_ids, run_id, round_id) -> None:
        from django.db import connection
        from django.db.models import Count

        from modeltrain.models import TrainingRound
        from preferences.labelers.models import LabelRun
        from preferences.models import Judgement
        from snapshots.models import Snapshot

        connection.close()
        stored = (
            Judgement.objects.filter(rater_user__in=self.raters)
            .values("pair_id", "rater_user_id")
            .distinct()
            .count()
        )
        dupes = (
            Judgement.objects.filter(rater_user__in=self.raters)
            .values("pair_id", "facet_id", "rater_user_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        self.check(
            self.acked <= stored <= self.acked + self.errored_submits,
            f"acknowledged {self.acked}, stored {stored}, errored submits {self.errored_submits}",
        )
        self.check(dupes == 0, f"{dupes} duplicate judgements")
        self.check(
            self.server_errors == 0, f"{self.server_errors} rater responses were 5xx but not 503"
        )
        jobs = []
        for s in Snapshot.objects.filter(pk__in=[i for i in snapshot_ids if i]):
            jobs.append(f"snapshot {s.pk} {s.status}{': ' + s.message if s.message else ''}")
            self.check(s.status == "done", f"snapshot {s.pk} {s.status} {s.message}")
        run = LabelRun.objects.get(pk=run_id)
        jobs.append(f"LLM run {run.status} {run.done}/{run.total} (failed {run.failed})")
        self.check(run.status == "done" and run.done == run.total, f"LLM run {run.status}")
        round_ = TrainingRound.objects.get(pk=round_id)
        jobs.append(f"round {round_.status}")
        self.check(
            round_.status in ("cancelled", "done") or bool(round_.error),
            f"round {round_.status} without a message",
        )
        alive = self.worker.alive()
        self.check(alive, "the worker died")
        self.faults.append(
            (
                "at the end",
                f"raters: {self.acked} acknowledged, all stored ({stored} stored: "
                f"{stored - self.acked} more whose response was cut off), {dupes} duplicates, "
                f"{self.server_errors} responses 500 (outages answered 503); "
                f"{'; '.join(jobs)}; worker {'alive' if alive else 'DEAD'}",
            )
        )

    def table(self) -> str:
        width = max(len(f) for f, _ in self.faults)
        lines = [f"{'fault injected'.ljust(width)} | what survived", "-" * (width + 40)]
        lines += [f"{f.ljust(width)} | {s}" for f, s in self.faults]
        return "\n".join(lines)

    def close(self) -> None:
        for name in ("worker", "web"):
            proc = getattr(self, name, None)
            if proc:
                proc.stop()
        self.redis.stop()
        self.pg.stop()
        if getattr(self, "gemini", None):
            self.gemini.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="a folder to keep the databases and logs in")
    args = parser.parse_args(argv)
    missing = tools_missing()
    if missing:
        print(f"fault suite: skipped ({missing})")
        return 0
    root = Path(args.keep or tempfile.mkdtemp(prefix="altpref-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    scenario = Scenario(root)
    started = time.monotonic()
    try:
        scenario.setup()
        scenario.run()
    except Exception as exc:  # noqa: BLE001 - reported with what was seen so far
        import traceback

        traceback.print_exc()
        scenario.failures.append(f"the scenario stopped: {type(exc).__name__}: {exc}")
    finally:
        scenario.close()
    if scenario.faults:
        print(scenario.table())
    kept = f", logs in {root / 'logs'}" if scenario.failures or args.keep else ""
    print(f"fault suite: {time.monotonic() - started:.0f} s{kept}")
    print(f"rater errors: {scenario.errors}, e.g. {scenario.error_samples}")
    for failure in scenario.failures:
        print(f"FAILED: {failure}")
    if not scenario.failures and not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)  # kept on failure, for its logs
    return 1 if scenario.failures else 0


if __name__ == "__main__":
    sys.exit(main())
