"""Benchmark the raters' queue: N simulated raters (Next → Submit) against the web server as
deployed (Granian, config/serve.py) on PostgreSQL.

Prints p50/p95 latency of Next and Submit, submits per second, and the count check: judgements
stored = submits acknowledged × facets, and no pair above its overlap. It builds its own
throw-away project and deletes it afterwards (unless --keep).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count, Q

from annotate.models import AltText, AltTextOrigin, Image, Membership, Platform, Post, Project, Role
from config.serve import web_settings
from preferences.consensus.models import Consensus
from preferences.consensus.services import consensus_refresh
from preferences.marks import refresh_key
from preferences.models import (
    Assignment,
    AssignmentStatus,
    CandidatePair,
    ConsensusPending,
    Judgement,
    PairSource,
)
from preferences.projects import project_create
from preferences.rating.floor import queue_floor_forget

from .measure import REFERENCE_LOOP_STEPS, reference_loop_seconds

# Every table a Next or a Submit reads or writes.
HOT_TABLES = (
    "auth_user",
    "django_session",
    "annotate_project",
    "annotate_membership",
    "annotate_image",
    "annotate_post",
    "annotate_alttext",
    "preferences_facet",
    "preferences_candidatepair",
    "preferences_assignment",
    "preferences_judgement",
    "consensus_consensuspolicy",
    "consensus_consensuspending",
)
# The tables a run fills, analysed while it runs as autovacuum would (see _autoanalyze).
GROWING_TABLES = ("preferences_assignment", "preferences_judgement", "consensus_consensuspending")
AUTOANALYZE_POLL_S = 0.5
SUBMIT_RE = re.compile(r'action="/rate/items/(\d+)/submit/"')
ROW_RE = re.compile(r'name="facet-([\w-]+)"')


class _HTTPClient:
    """The simulated rater's browser: HTTP/1.1 on one socket, kept alive when the server allows
    it and opened again when it does not.

    Hand-rolled rather than http.client, whose header parsing cost the clients 0.7 ms of CPU per
    cycle on the cores the server was being measured on; this reads the status line,
    Content-Length and Connection, which is all a rater's Next and Submit need.
    """

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock: socket.socket | None = None
        self.buf = b""

    def request(self, method: str, path: str, body: str = "") -> tuple[int, str]:
        data = body.encode()
        message = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.head}"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        if self.sock is None:
            self._connect()
            self.sock.sendall(message)
            return self._response()
        try:
            self.sock.sendall(message)
            return self._response()
        except (ConnectionError, _ClosedEarly):
            # The server closed a kept-alive connection first; one fresh try.
            self._connect()
            self.sock.sendall(message)
            return self._response()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock, self.buf = None, b""

    def _connect(self):
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _response(self) -> tuple[int, str]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _ClosedEarly("connection closed before a response")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "transfer-encoding" in fields:
            raise ValueError("a chunked response: Django sends the rating pages whole")
        length = int(fields.get("content-length", 0))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _ClosedEarly("connection closed in the middle of a response")
            rest += chunk
        self.buf = rest[length:]
        body = rest[:length].decode()
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, body


class _ClosedEarly(ConnectionError):
    pass


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_cache_url() -> str:
    """The cache the bench's web server uses: Redis, as deployed (the configured one, if any)."""
    url = os.environ.get("CACHE_URL") or ""
    return url if url.startswith("redis://") else "redis://127.0.0.1:6379/2"


class Command(BaseCommand):
    help = "Run simulated raters against the web server on PostgreSQL and print latency and counts."

    def add_arguments(self, parser):
        parser.add_argument("--raters", type=int, default=20)
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--overlap", type=int, default=2)
        parser.add_argument("--pairs", type=int, default=0, help="default: enough for the run")
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="web server processes (default: as deployed, config/serve.py: 1 per core)",
        )
        parser.add_argument(
            "--threads", type=int, default=0, help="threads per process (default: as deployed, 2)"
        )
        parser.add_argument("--keep", action="store_true", help="keep the bench project")
        parser.add_argument(
            "--prefill",
            type=int,
            default=0,
            help="first give the project this many stored judgements (e.g. 1000000): a history "
            "of pairs the bench raters finished before the run, written in bulk SQL; the "
            "rating cycle's cost should not grow with it",
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=0,
            help="pace the raters to this many cycles (submits) per second in all, instead of "
            "each going as fast as it can: latency at a given load rather than at saturation",
        )
        parser.add_argument(
            "--baseline",
            type=float,
            default=0,
            help="first measure this many seconds of a bare page (GET /login/) with the same "
            "clients, to show what the machine gives any Django request",
        )

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_rating measures the PostgreSQL row-locking queue: set DATABASE_URL to a "
                "PostgreSQL database (SQLite serialises writers, so its numbers mean nothing here)."
            )
        raters, seconds, overlap = opts["raters"], opts["seconds"], opts["overlap"]
        n_pairs = opts["pairs"] or max(500, int(raters * seconds * 25 / overlap))
        started = time.perf_counter()
        project, users = self._setup(
            raters=raters, n_pairs=n_pairs, overlap=overlap, prefill=opts["prefill"]
        )
        self.stdout.write(
            f"bench project {project.id}: {n_pairs} pairs, {raters} raters, overlap {overlap}"
            + (
                f"; pre-filled with {opts['prefill']:,} stored judgements in "
                f"{time.perf_counter() - started:.0f} s"
                if opts["prefill"]
                else ""
            )
        )
        # Vacuumed, with fresh statistics, as autovacuum keeps a real database (it is off on
        # these machines): dead rows left by earlier runs slow every scan, and without
        # statistics the planner guesses the new project is tiny.
        with connection.cursor() as cursor:
            for table in HOT_TABLES:
                cursor.execute(f"VACUUM ANALYZE {table}")
        port = _free_port()
        # As deployed (config/serve.py, from the same environment) unless told.
        deployed = web_settings()
        workers = opts["workers"] or deployed.workers
        threads = opts["threads"] or deployed.threads
        server = self._serve(port=port, workers=workers, threads=threads)
        try:
            if opts["baseline"]:
                before = self._server_cpu(server)
                n = self._baseline(port=port, clients=raters, seconds=opts["baseline"])
                after = self._server_cpu(server)
                self.stdout.write(
                    f"baseline server CPU per request: "
                    f"{1000 * (after['app'] - before['app']) / max(n, 1):.2f} ms (web server)"
                )
            reference = [reference_loop_seconds()]
            cpu_before = self._server_cpu(server)
            results = self._run(
                project=project,
                users=users,
                port=port,
                seconds=seconds,
                rate=opts["rate"],
                server=server,
            )
            results["cpu"] = {
                k: v - cpu_before.get(k, 0.0) for k, v in self._server_cpu(server).items()
            }
            reference.append(reference_loop_seconds())
            results["reference"] = reference
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        self._report(
            project=project,
            results=results,
            seconds=seconds,
            workers=workers,
            threads=threads,
            rate=opts["rate"],
        )
        if not opts["keep"]:
            self._teardown(project=project)

    # --- setup --------------------------------------------------------------------------

    def _setup(self, *, raters: int, n_pairs: int, overlap: int, prefill: int = 0):
        import io

        from PIL import Image as PILImage

        stamp = secrets.token_hex(4)
        with transaction.atomic():
            project = project_create(
                name=f"bench-rating-{stamp}", overlap=overlap, guidelines="Bench."
            )
            buf = io.BytesIO()
            PILImage.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
            data = buf.getvalue()
            sha = hashlib.sha256(data + stamp.encode()).hexdigest()
            from django.core.files.base import ContentFile

            image = Image(sha256=sha, mime="image/png", width=8, height=8, size_bytes=len(data))
            image.file.save(f"bench/{sha}.png", ContentFile(data), save=False)
            image.save()
            User = get_user_model()
            users = []
            for i in range(raters):
                user, _ = User.objects.get_or_create(username=f"bench-rater-{i}")
                Membership.objects.update_or_create(
                    project=project, user=user, defaults={"role": Role.ANNOTATOR}
                )
                users.append(user)
            if prefill:
                self._prefill(project=project, image=image, users=users, judgements=prefill)
            posts = Post.objects.bulk_create(
                Post(
                    project=project,
                    platform=Platform.OTHER,
                    external_id=f"b{i}",
                    content_key=hashlib.sha256(f"{stamp}-{i}".encode()).hexdigest(),
                    context=f"Bench post {i}",
                    image=image,
                )
                for i in range(n_pairs)
            )
            alts = AltText.objects.bulk_create(
                AltText(
                    post=p, text=t, text_sha256=hashlib.sha256(t.encode()).hexdigest(), origin=o
                )
                for p in posts
                for t, o in (
                    (f"A red square {p.external_id}", AltTextOrigin.IMPORTED_CHOSEN),
                    (f"A shape {p.external_id}", AltTextOrigin.IMPORTED_REJECTED),
                )
            )
            CandidatePair.objects.bulk_create(
                CandidatePair(
                    post=posts[i],
                    alt_a=alts[2 * i],
                    alt_b=alts[2 * i + 1],
                    source=PairSource.IMPORT,
                )
                for i in range(n_pairs)
            )
        return project, users

    def _prefill(self, *, project, image, users, judgements: int):
        """A history before the open pairs (lower ids, as it would be): pairs each finished by
        `overlap` of the bench raters in turn, every active facet answered, so the project
        holds about `judgements` stored judgements. Bulk SQL (generate_series), not the ORM."""
        facets = project.facets.filter(is_active=True).count()
        n = max(1, -(-judgements // (facets * project.overlap)))
        params = {
            "project": project.pk,
            "image": image.pk,
            "n": n,
            "stamp": project.name,
            "users": [u.pk for u in users],
            "overlap": project.overlap,
            "chosen": AltTextOrigin.IMPORTED_CHOSEN.value,
            "rejected": AltTextOrigin.IMPORTED_REJECTED.value,
        }
        statements = [
            """INSERT INTO annotate_post (platform, external_id, content_key, context, split,
                   provenance, created_at, image_id, project_id)
               SELECT 'other', 'h' || g, md5(%(stamp)s || '-h' || g), 'History post ' || g,
                      'train', '{}'::jsonb, now(), %(image)s, %(project)s
               FROM generate_series(1, %(n)s) g""",
            """INSERT INTO annotate_alttext (text, text_sha256, origin, created_at, post_id)
               SELECT t.text, encode(sha256(convert_to(t.text, 'UTF8')), 'hex'), t.origin,
                      now(), t.post_id
               FROM (SELECT po.id AS post_id, side.origin,
                            side.label || ' ' || po.external_id AS text
                     FROM annotate_post po
                     CROSS JOIN (VALUES ('A red square', %(chosen)s), ('A shape', %(rejected)s))
                          AS side(label, origin)
                     WHERE po.project_id = %(project)s AND po.external_id LIKE 'h%%'
                     ORDER BY po.id, side.origin) t""",
            """INSERT INTO preferences_candidatepair (source, created_at, alt_a_id, alt_b_id,
                   post_id)
               SELECT 'import', now(), MIN(a.id), MAX(a.id), a.post_id
               FROM annotate_alttext a JOIN annotate_post po ON po.id = a.post_id
               WHERE po.project_id = %(project)s AND po.external_id LIKE 'h%%'
               GROUP BY a.post_id ORDER BY a.post_id""",
            # Rater k of pair i: the bench raters in turn, `overlap` distinct ones per pair.
            """INSERT INTO preferences_assignment (status, shown_order, token, reserved_at,
                   reserved_until, submitted_at, pair_id, project_id, rater_id)
               SELECT 'done', 'AB', gen_random_uuid(), now() - interval '1 day',
                      now() - interval '1 day' + interval '10 minutes',
                      now() - interval '1 day' + interval '10 seconds', p.id, %(project)s,
                      (%(users)s::int[])[1 + (p.rn + k) %% cardinality(%(users)s::int[])]
               FROM (SELECT cp.id, row_number() OVER (ORDER BY cp.id) AS rn
                     FROM preferences_candidatepair cp JOIN annotate_post po
                          ON po.id = cp.post_id
                     WHERE po.project_id = %(project)s AND po.external_id LIKE 'h%%') p
               CROSS JOIN generate_series(0, LEAST(%(overlap)s,
                                                   cardinality(%(users)s::int[])) - 1) k""",
            """INSERT INTO preferences_judgement (kind, choice, shown_order, seconds_spent,
                   rationale, client_key, llm_verdict_visible, created_at, facet_id, pair_id,
                   rater_user_id)
               SELECT 'human', 'A', 'AB', 10, '', replace(a.token::text, '-', '') || ':' || f.key,
                      false, a.submitted_at, f.id, a.pair_id, a.rater_id
               FROM preferences_assignment a
               JOIN preferences_facet f ON f.project_id = a.project_id AND f.is_active
               WHERE a.project_id = %(project)s""",
        ]
        with connection.cursor() as cursor:
            # Without the per-row triggers (the raters' progress rows, counted once at the end,
            # and the foreign-key checks of rows built from each other here): with them the
            # assignments' insert took longer than a quarter of an hour. This transaction only.
            cursor.execute("SET LOCAL session_replication_role = replica")
            for sql in statements:
                cursor.execute(sql, params)
            cursor.execute("SET LOCAL session_replication_role = origin")
            for user in users:
                cursor.execute(
                    "SELECT altpref_rater_progress_recount(%s, %s, true)", [project.pk, user.pk]
                )

    def _session_for(self, user, project) -> str:
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(user.pk)
        # The backend that signs users in (django-axes' backend, listed first, only guards
        # logins and has no get_user: a session naming it fails every request).
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[f"guidelines_seen_{project.id}"] = True
        session.create()
        return session.session_key

    def _serve(self, *, port: int, workers: int, threads: int) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "60",
            # As deployed: sessions read from Redis, consensus refreshes queued for a worker (not
            # run inline, as the eager embedded default would). The report refreshes what piled
            # up and says what that cost. The refreshes are queued in each server process's own
            # memory, not the shared broker: a message queued there outlived the bench project
            # (deleted at the end) and a worker, a test's included, picked it up later. Queuing
            # is once per project while a refresh waits (the cache key), so the cycle's cost is
            # the same.
            "CACHE_URL": _server_cache_url(),
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "WEB_APP": "benchmarks.wsgi:application",
            "WEB_BIND": f"127.0.0.1:{port}",
            "WEB_WORKERS": str(workers),
            "WEB_THREADS": str(threads),
            "WEB_LOG_LEVEL": "warning",
        }
        cmd = [sys.executable, "-m", "config.serve"]
        proc = subprocess.Popen(cmd, cwd=Path(settings.BASE_DIR), env=env)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                if proc.poll() is not None:
                    raise CommandError(
                        "the web server exited at start-up; see its output above."
                    ) from None
                time.sleep(0.1)
        proc.kill()
        raise CommandError("the web server did not start listening within 30 s.")

    # --- the run ------------------------------------------------------------------------

    def _run(
        self, *, project, users, port: int, seconds: float, rate: float = 0, server=None
    ) -> dict:
        sessions = self._sessions = [self._session_for(u, project) for u in users]
        barrier = threading.Barrier(len(users) + 1)
        results = {
            "next": [],
            "submit": [],
            "acked": 0,
            "errors": [],
            "empty": 0,
            "lag": [],
            "per_rater": [],
        }
        # Paced (--rate): each rater starts a cycle every len(users)/rate seconds, as an open
        # workload does; a cycle that cannot start on time starts late and its lag is kept.
        interval = len(users) / rate if rate else 0.0
        lock = threading.Lock()
        deadline = [0.0]

        def rater(session_key: str):
            csrf = secrets.token_hex(16)  # 32 chars: an unmasked CSRF secret
            headers = {
                "Cookie": f"sessionid={session_key}; csrftoken={csrf}",
                "X-CSRFToken": csrf,
                "Content-Type": "application/x-www-form-urlencoded",
            }
            conn = _HTTPClient(port, headers)
            nexts, submits, acked, errors, lags = [], [], 0, [], []
            barrier.wait()
            due = time.perf_counter() + random.uniform(0, interval)
            while time.perf_counter() < deadline[0]:
                if interval:
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    lags.append(max(0.0, -wait))
                    due += interval
                try:
                    t0 = time.perf_counter()
                    status, body = conn.request("GET", f"/projects/{project.id}/rate/next/")
                    nexts.append(time.perf_counter() - t0)
                    match = SUBMIT_RE.search(body)
                    if status != 200 or not match:
                        with lock:
                            results["empty"] += 1
                        break
                    form = "&".join(
                        f"facet-{k}={random.choice(['A', 'B', 'tie', 'both-bad'])}"
                        for k in dict.fromkeys(ROW_RE.findall(body))
                    )
                    t0 = time.perf_counter()
                    status, _ = conn.request(
                        "POST", f"/rate/items/{match.group(1)}/submit/", body=form
                    )
                    submits.append(time.perf_counter() - t0)
                    if status in (302, 303):
                        acked += 1
                    else:
                        errors.append(f"submit {status}")
                except (OSError, ValueError, IndexError) as exc:
                    errors.append(repr(exc))
                    conn.close()
            conn.close()
            with lock:
                results["per_rater"].append(acked)
                results["next"] += nexts
                results["submit"] += submits
                results["acked"] += acked
                results["errors"] += errors
                results["lag"] += lags

        threads = [threading.Thread(target=rater, args=(s,), daemon=True) for s in sessions]
        for t in threads:
            t.start()
        deadline[0] = time.perf_counter() + seconds
        threading.Thread(target=self._autoanalyze, args=(deadline,), daemon=True).start()
        if server is not None:
            threading.Thread(
                target=self._connection_split, args=(server, port, len(users), results), daemon=True
            ).start()
        start = time.perf_counter()
        cpu0 = time.process_time()
        barrier.wait()
        for t in threads:
            t.join()
        results["elapsed"] = time.perf_counter() - start
        results["client_cpu"] = time.process_time() - cpu0
        return results

    def _autoanalyze(self, deadline: list[float]):
        """What autovacuum does for a real database (it is off on these machines), by its own
        default rule: analyse a table once more than 50 + 10 % of its rows have changed since
        the last analysis. The run starts with no assignments or judgements; plans made for
        empty tables (sequential scans, kept by every connection's prepared statements) would
        otherwise stay for the whole run. Analysing a table invalidates the plans that read it.
        Runs in its own connection; its CPU counts as the database's."""
        from django.db import connections

        sql = """SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                 WHERE s.relname = ANY(%s) AND s.n_mod_since_analyze > 50 + 0.1 * c.reltuples"""
        try:
            while time.perf_counter() < deadline[0]:
                time.sleep(AUTOANALYZE_POLL_S)
                with connection.cursor() as cursor:
                    cursor.execute(sql, [list(GROWING_TABLES)])
                    for (table,) in cursor.fetchall():
                        cursor.execute(f"ANALYZE {table}")
        finally:
            connections.close_all()

    def _connection_split(self, server, port: int, expected: int, results: dict):
        """How many of the raters' kept-alive connections each web server process holds, once
        they are all open: each stays with the process that accepted it, and the kernel
        spreads them at random, so an uneven split (6 / 14 happens) is the usual reason one run's
        p95 is well above another's."""
        import psutil

        for _ in range(100):
            time.sleep(0.1)
            counts = []
            try:
                children = psutil.Process(server.pid).children(recursive=True)
            except psutil.Error:
                return  # the server is gone; the run reports its errors
            for proc in children:
                try:
                    conns = proc.net_connections(kind="tcp")
                except psutil.Error:
                    continue
                ours = [c for c in conns if c.laddr and c.laddr.port == port]
                # A worker listens on the port itself (each has its own SO_REUSEPORT socket).
                if any(c.status == psutil.CONN_LISTEN for c in ours):
                    counts.append(sum(c.status == psutil.CONN_ESTABLISHED for c in ours))
            if sum(counts) >= expected:
                results["split"] = sorted(counts)
                return

    def _server_cpu(self, server: subprocess.Popen) -> dict[str, float]:
        """CPU seconds used so far by the web server (main process and workers) and by the
        PostgreSQL backends of this database: on a shared machine, CPU per request says more
        than wall-clock latency, which other people's load inflates."""
        import psutil

        def cpu(proc) -> float:
            try:
                t = proc.cpu_times()
                return t.user + t.system
            except psutil.Error:
                return 0.0

        root = psutil.Process(server.pid)
        app = cpu(root) + sum(cpu(p) for p in root.children(recursive=True))
        db = 0.0
        name = f" {settings.DATABASES['default']['NAME']} "
        for proc in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or []) + " "
            if proc.info["name"] == "postgres" and line.startswith("postgres:") and name in line:
                db += cpu(proc)
        return {"app": app, "db": db}

    def _baseline(self, *, port: int, clients: int, seconds: float):
        times: list[float] = []
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def client():
            conn = _HTTPClient(port, {})
            mine = []
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                conn.request("GET", "/login/")
                mine.append(time.perf_counter() - t0)
            conn.close()
            with lock:
                times.extend(mine)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.stdout.write(
            f"baseline GET /login/ n={len(times):6d}  p50={_pct(times, 0.5) * 1000:7.1f} ms  "
            f"p95={_pct(times, 0.95) * 1000:7.1f} ms  {len(times) / seconds:.0f} req/s"
        )
        return len(times)

    def _report(
        self,
        *,
        project,
        results: dict,
        seconds: float,
        workers: int,
        threads: int,
        rate: float,
    ):
        facets = project.facets.filter(is_active=True).count()
        # The run's pairs only, not the --prefill history (posts "h…").
        history = Q(pair__post__external_id__startswith="h")
        judged = Judgement.objects.filter(pair__post__project=project).exclude(history)
        stored = judged.count()
        done = (
            Assignment.objects.filter(project=project, status=AssignmentStatus.DONE)
            .exclude(history)
            .count()
        )
        over = (
            judged.values("pair_id")
            .annotate(raters=Count("rater_user", distinct=True))
            .filter(raters__gt=project.overlap)
            .count()
        )
        ms = lambda v: v * 1000  # noqa: E731
        acked = results["acked"]
        out = self.stdout.write
        out(
            f"web server: Granian, {workers} processes × {threads} threads; "
            f"{len(results['errors'])} client errors; "
            f"{results['empty']} raters stopped on an empty queue"
            + (f" (first: {results['errors'][0]})" if results["errors"] else "")
        )
        out(
            f"next   n={len(results['next']):6d}  p50={ms(_pct(results['next'], 0.5)):7.1f} ms  "
            f"p95={ms(_pct(results['next'], 0.95)):7.1f} ms"
        )
        out(
            f"submit n={len(results['submit']):6d}  p50={ms(_pct(results['submit'], 0.5)):7.1f} ms  "
            f"p95={ms(_pct(results['submit'], 0.95)):7.1f} ms"
        )
        out(
            f"submits/s: {acked / results['elapsed']:.1f} ({acked} acknowledged in {results['elapsed']:.1f} s)"
            + (f"; offered {rate:.0f}/s" if rate else "; closed loop, no think time")
        )
        if results.get("split"):
            out(
                "connections per web server process: "
                + " / ".join(str(n) for n in results["split"])
                + " (each kept-alive connection stays with its process)"
            )
        per_rater = results["per_rater"]
        if per_rater:
            # Each kept-alive connection stays with the server process that accepted it: an
            # uneven split of raters over processes shows here (and in p95), not in submits/s.
            out(
                f"submits per rater: min {min(per_rater)}, median {_pct(per_rater, 0.5):.0f}, "
                f"max {max(per_rater)}"
            )
        if rate:
            lag = results["lag"]
            kept_up = _pct(lag, 0.95) < 0.01
            out(
                f"cycle start lag (paced): p50={ms(_pct(lag, 0.5)):.1f} ms  "
                f"p95={ms(_pct(lag, 0.95)):.1f} ms ("
                + (
                    "the server kept up with the offered rate)"
                    if kept_up
                    else "the server fell "
                    "behind: the offered rate is above what it serves; latencies above are "
                    "per request and leave the waiting out)"
                )
            )
        cpu = results.get("cpu")
        if cpu and acked:
            per = {k: v * 1000 / acked for k, v in cpu.items()}
            out(
                f"server CPU per next+submit cycle: {per['app'] + per['db']:.1f} ms "
                f"(web server {per['app']:.1f} ms, PostgreSQL backends {per['db']:.1f} ms; "
                f"clients not counted) -> at most {1000 * (os.cpu_count() or 1) / (per['app'] + per['db']):.0f} "
                "submits/s if the server had every core to itself"
            )
            out(
                f"client CPU per cycle: {results['client_cpu'] * 1000 / acked:.1f} ms "
                "(the simulated raters run on the same cores)"
            )
        before, after = results["reference"]
        out(
            f"machine reference: a {REFERENCE_LOOP_STEPS:,}-step Python loop took {before:.2f} s "
            f"before the run and {after:.2f} s after it (CPU per cycle moves with it)"
        )
        ok = stored == acked * facets and done == acked and over == 0
        out(
            f"count check: judgements stored {stored} = acknowledged {acked} × {facets} facets: "
            f"{stored == acked * facets}; assignments done {done}; pairs above overlap "
            f"{project.overlap}: {over} -> {'OK' if ok else 'FAILED'}"
        )
        pending = ConsensusPending.objects.filter(project=project).count()
        t0 = time.perf_counter()
        drained = consensus_refresh(project_id=project.id)
        spent = time.perf_counter() - t0
        out(
            f"consensus off the request path: {pending} pairs pending after the run, refreshed "
            f"in {spent:.1f} s ({1000 * spent / max(drained, 1):.1f} ms per pair, one worker "
            f"process); {Consensus.objects.filter(pair__post__project=project).count()} "
            "consensus rows"
        )
        if not ok:
            raise CommandError("count check failed: lost, extra or over-overlap judgements")

    def _teardown(self, *, project):
        # The raters' sessions (in the cache and the database) and the refresh's "queued" key
        # go with the project.
        store = import_module(settings.SESSION_ENGINE).SessionStore
        for key in getattr(self, "_sessions", []):
            store(session_key=key).delete()
        cache.delete(refresh_key(project.pk))
        # The queue floors the server processes shared, in the cache they used.
        queue_floor_forget(
            project=project,
            rater_ids=[m.user_id for m in Membership.objects.filter(project=project)],
            using=RedisCache(_server_cache_url(), {}),
        )
        image_ids = list(
            Post.objects.filter(project=project).values_list("image_id", flat=True).distinct()
        )
        with transaction.atomic():
            # In SQL: a pre-filled project holds a million judgements (--prefill), which the
            # ORM's delete would read back first.
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM preferences_judgement j USING preferences_candidatepair p, "
                    "annotate_post po WHERE j.pair_id = p.id AND p.post_id = po.id "
                    "AND po.project_id = %s",
                    [project.pk],
                )
                cursor.execute(
                    "DELETE FROM preferences_assignment WHERE project_id = %s", [project.pk]
                )
            CandidatePair.objects.filter(post__project=project).delete()
            AltText.objects.filter(post__project=project).delete()
            Post.objects.filter(project=project).delete()
            for image in Image.objects.filter(pk__in=image_ids):
                image.file.delete(save=False)
                image.delete()
            Project.objects.filter(pk=project.pk).delete()
