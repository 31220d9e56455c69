"""The web tier: `python -m config.serve` serves the WSGI app with Granian (Dockerfile,
docker-compose, bench_rating). Environment variables override the defaults below.

Granian rather than gunicorn: its HTTP handling is Rust, off the GIL. bench_rating at 20 raters
on the 2-core machine, runs alternated: gunicorn spent 6.9-8.0 ms of app CPU per Next+Submit and
served 160-181 submits/s; Granian spent 4.8-6.6 ms and served 179-243/s.

Connections are kept alive, and each stays with the process that accepted it (the kernel
spreads new ones over the processes at random). With few clients one process can hold more
of them than the other: at 20 raters on 2 processes, 11/9 was usual and 17/3 was seen once.
Each process then serves the same number of requests, so the raters on the fuller one wait
longer: the spread shows in p95, not in throughput. Many clients even it out.
"""

from __future__ import annotations

import gc
import importlib
import os
from dataclasses import dataclass

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server

DEFAULT_APP = "config.wsgi:application"


@dataclass(frozen=True)
class WebSettings:
    app: str
    host: str
    port: int
    workers: int
    threads: int
    log_level: str


def web_settings(environ: dict[str, str] | None = None) -> WebSettings:
    """The server's settings from the environment (WEB_*), with the deployed defaults."""
    env = os.environ if environ is None else environ
    host, _, port = env.get("WEB_BIND", "0.0.0.0:8000").rpartition(":")
    cores = os.cpu_count() or 1
    return WebSettings(
        app=env.get("WEB_APP", DEFAULT_APP),
        host=host or "0.0.0.0",
        port=int(port),
        # A process per core, each with two Python threads: while one thread waits on
        # PostgreSQL or Redis the other runs. On the 2-core bench machine this served as many
        # submits/s as 4 processes of 1 thread (202-220 against 197-216, runs alternated), with
        # half the processes' memory; 2 x 4 threads served fewer (188-203, GIL contention).
        workers=int(env.get("WEB_WORKERS", cores)),
        threads=int(env.get("WEB_THREADS", 2)),
        log_level=env.get("WEB_LOG_LEVEL", "info"),
    )


def build_server(settings: WebSettings) -> Server:
    return Server(
        settings.app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.workers,
        blocking_threads=settings.threads,
        log_level=LogLevels(settings.log_level),
        # A worker that dies (killed, out of memory) is started again; the others go on
        # serving meanwhile.
        respawn_failed_workers=True,
    )


def _preload(app: str) -> None:
    """Import Django and the app in this process before the workers fork from it: they start
    warm and share its memory. Objects loaded now live as long as the workers; frozen, the
    collector neither scans them at every full collection nor copies their pages."""
    module, _, _ = app.partition(":")
    importlib.import_module(module)
    gc.freeze()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    settings = web_settings()
    _preload(settings.app)
    build_server(settings).serve()


if __name__ == "__main__":
    main()
