"""gunicorn settings for the web tier: `gunicorn -c config/gunicorn.conf.py` (Dockerfile,
docker-compose, bench_rating). Environment variables override the defaults."""

import gc
import multiprocessing
import os

wsgi_app = os.environ.get("GUNICORN_APP", "config.wsgi:application")
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# A rating request spends part of its time waiting on PostgreSQL and Redis, hence more than
# one single-threaded process per core, but not many more: each extra process (and its
# database connection) made every request dearer. At 20 raters on the 2-core bench machine,
# 4 processes served 136-154 submits/s at 12-14 ms of CPU per Next+Submit; 8 served 110-139
# at 14-17 ms (bench_rating, runs alternated). Raise it when the database is far away.
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
worker_class = "gthread"
# Each process takes a connection only when it has a free thread, and closes it after the
# response: every request goes to whichever process is free. With kept-alive connections each
# client stayed on the process that had accepted it, raters sharing a process waited on each
# other while others sat idle, and p95 was 2-3 times the median (150-190 ms at 20 raters on
# the 2-core bench machine; 60-100 ms without). gthread rather than sync workers: its main
# thread keeps reporting to the arbiter during a long response (a snapshot download), which a
# sync worker would have killed after `timeout`. Put a buffering proxy in front in production.
worker_connections = threads
keepalive = 0
# Load Django once in the master: workers share its memory (copy-on-write) and start warm.
preload_app = True


def when_ready(server):
    # Objects loaded before the fork live as long as the workers: moved out of the collector's
    # reach, they are neither scanned at every full collection nor copied by its bookkeeping.
    gc.freeze()
