"""Django's Redis cache with one redis-py client per connection pool instead of one per call.

Django builds a new `redis.Redis` for every cache operation; redis-py's constructor fills a
table of ~170 response callbacks each time, which cost more CPU than the Redis round trip
(about 0.3 ms per session read). Clients are thread-safe and hold no per-call state, so one
per pool serves every call. Selected by settings when CACHE_URL is a redis:// URL.
"""

import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

log = logging.getLogger(__name__)


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient


class DegradingRedisCache(ReusingRedisCache):
    """The Redis cache, but an unreachable Redis is a miss, not an error.

    Reads answer the default, writes are dropped, and for BREAKER_S seconds after a failure
    Redis is not tried at all (each try would cost a connect timeout). Sessions (cached_db)
    then read and write the database, which holds them anyway; the consensus refresh's
    once-per-project check (`add` answers True) lets every request queue one, so it runs more often.
    """

    BREAKER_S = 5.0

    def __init__(self, server, params):
        super().__init__(server, params)
        self._down_until = 0.0

    def _guard(name, fallback):  # noqa: N805 - a decorator factory used in the class body
        def method(self, *args, **kwargs):
            import time

            import redis

            if time.monotonic() < self._down_until:
                return fallback(args, kwargs)
            try:
                return getattr(super(), name)(*args, **kwargs)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.warning("cache unreachable (%s); degrading for %ss", exc, self.BREAKER_S)
                self._down_until = time.monotonic() + self.BREAKER_S
                return fallback(args, kwargs)

        method.__name__ = name
        return method

    def _default(args, kwargs):  # noqa: N805
        return kwargs.get("default", args[1] if len(args) > 1 else None)

    get = _guard("get", _default)
    set = _guard("set", lambda a, k: None)
    add = _guard("add", lambda a, k: True)
    touch = _guard("touch", lambda a, k: False)
    delete = _guard("delete", lambda a, k: False)
    get_many = _guard("get_many", lambda a, k: {})
    set_many = _guard("set_many", lambda a, k: [])
    delete_many = _guard("delete_many", lambda a, k: None)
    has_key = _guard("has_key", lambda a, k: False)
    incr = _guard("incr", lambda a, k: (_ for _ in ()).throw(ValueError("cache unavailable")))
    clear = _guard("clear", lambda a, k: None)
    del _guard, _default
