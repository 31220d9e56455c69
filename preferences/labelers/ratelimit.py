"""Requests-per-minute limit for LLM calls.

With Redis as the Celery broker every worker shares one fixed one-minute window per model
(INCR + EXPIRE), so N workers together stay under GEMINI_RPM. Without Redis (the embedded
default: one process) an in-process limiter spaces calls 60/rpm seconds apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings


class IntervalLimiter:
    """Spaces calls evenly: at most `rpm` per minute within one process."""

    def __init__(
        self,
        rpm: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 60.0 / rpm if rpm > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait:
            self._sleep(wait)
        return wait


class RedisWindowLimiter:
    def __init__(
        self, url: str, rpm: int, key: str, *, sleep: Callable[[float], None] = time.sleep
    ):
        import redis

        self._redis = redis.Redis.from_url(url)
        self.rpm, self.key, self._sleep = rpm, key, sleep

    def acquire(self) -> float:
        waited = 0.0
        while self.rpm > 0:
            now = time.time()
            window = int(now // 60)
            name = f"altpref:llm-rpm:{self.key}:{window}"
            count = self._redis.incr(name)
            if count == 1:
                self._redis.expire(name, 120)
            if count <= self.rpm:
                break
            pause = 60 * (window + 1) - now + 0.01
            self._sleep(pause)
            waited += pause
        return waited


_limiters: dict[tuple, object] = {}
_guard = threading.Lock()


def limiter_for(*, model_id: str, rpm: int):
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    key = (model_id, rpm, broker if broker.startswith("redis") else "")
    with _guard:
        if key not in _limiters:
            _limiters[key] = (
                RedisWindowLimiter(broker, rpm, model_id)
                if broker.startswith("redis")
                else IntervalLimiter(rpm)
            )
        return _limiters[key]
