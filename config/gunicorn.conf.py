"""gunicorn settings for the web tier: `gunicorn -c config/gunicorn.conf.py` (Dockerfile,
docker-compose, bench_rating). Environment variables override the defaults."""

import gc
import multiprocessing
import os

wsgi_app = os.environ.get("GUNICORN_APP", "config.wsgi:application")
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# A rating request spends much of its time waiting on PostgreSQL and Redis, and Python threads
# of one process take turns on one core: single-threaded processes, several per core. On the
# 2-core bench machine 12 processes × 1 thread served the most submits (bench_rating); 5 × 2
# gave 25-40 % fewer. gthread keeps client connections alive between requests.
workers = int(os.environ.get("GUNICORN_WORKERS", 6 * multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
worker_class = "gthread"
# Load Django once in the master: workers share its memory (copy-on-write) and start warm.
preload_app = True


def when_ready(server):
    # Objects loaded before the fork live as long as the workers: moved out of the collector's
    # reach, they are neither scanned at every full collection nor copied by its bookkeeping.
    gc.freeze()
