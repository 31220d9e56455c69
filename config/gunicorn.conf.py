"""gunicorn settings for the web tier: `gunicorn -c config/gunicorn.conf.py` (Dockerfile,
docker-compose, bench_rating). Environment variables override the defaults."""

import gc
import multiprocessing
import os

wsgi_app = os.environ.get("GUNICORN_APP", "config.wsgi:application")
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Sync workers: one request at a time per process and no keep-alive, so every request goes to
# whichever process is free. With gthread's kept-alive connections each client stays on the
# process that accepted it, and raters sharing a process waited on each other: on the 2-core
# bench machine (bench_rating, 20 raters) sync workers cut p95 from 150-190 ms to 60-70 ms at
# the same CPU per request. A rating request spends part of its time waiting on PostgreSQL and
# Redis, hence several processes per core; 4-8 on 2 cores served the most. Put a buffering
# proxy (nginx, a load balancer) in front, as for any sync worker: slow clients then never
# hold a process.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = int(os.environ.get("GUNICORN_WORKERS", 4 * multiprocessing.cpu_count()))
# More than one thread turns the workers into gthread workers (kept-alive connections).
threads = int(os.environ.get("GUNICORN_THREADS", 1))
# Load Django once in the master: workers share its memory (copy-on-write) and start warm.
preload_app = True


def when_ready(server):
    # Objects loaded before the fork live as long as the workers: moved out of the collector's
    # reach, they are neither scanned at every full collection nor copied by its bookkeeping.
    gc.freeze()
