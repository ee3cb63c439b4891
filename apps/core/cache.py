"""Django's Redis cache, made to survive Redis going away.

Everything kept in this cache can be lost (rate-limit counters, job locks that time out),
so while Redis cannot be reached a read is a miss and a write does nothing, instead of an
exception that turns the request into a 500. The outage is logged when it starts and when it
ends (apps.core.outages), not per call. Callers that must behave differently without Redis
(the rate limit) ask `is_available()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core import outages

# BusyLoadingError (Redis still loading its dataset after a restart) is a ConnectionError.
REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError)

# Short, so a Redis that is down (or frozen) costs a request at most about a second.
DEFAULT_POOL_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "health_check_interval": 30}

T = TypeVar("T")


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client, with one redis.Redis per connection pool instead of a new one per call:
    redis.Redis() builds its table of ~170 response callbacks each time (about 0.3 ms of CPU,
    for every cache call of every request). redis-py clients are thread-safe; the pool does
    the connection handling (and starts afresh in a forked process)."""

    def __init__(self, servers: Any, **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self._options: dict[str, Any] = {**DEFAULT_POOL_OPTIONS, **params.get("OPTIONS", {})}

    def _call(self, operation: Callable[[], T], fallback: T) -> T:
        try:
            result = operation()
        except REDIS_DOWN_ERRORS as exc:
            outages.redis.failed(exc)
            return fallback
        outages.redis.succeeded()
        return result

    def is_available(self) -> bool:
        """False while this process's last Redis call failed (until one succeeds again)."""
        return not outages.redis.is_down

    def ping(self) -> None:
        """Raises while Redis cannot be reached (the health check)."""
        self._cache.get_client(write=True).ping()  # type: ignore[attr-defined]

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        # False without Redis: a lock is not taken, a "first time" marker is not claimed.
        return self._call(lambda: super(ResilientRedisCache, self).add(key, value, timeout, version), False)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._call(lambda: super(ResilientRedisCache, self).get(key, default, version), default)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._call(lambda: super(ResilientRedisCache, self).set(key, value, timeout, version), None)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._call(lambda: super(ResilientRedisCache, self).touch(key, timeout, version), False)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._call(lambda: super(ResilientRedisCache, self).delete(key, version), False)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        return self._call(lambda: super(ResilientRedisCache, self).get_many(keys, version), {})

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._call(lambda: super(ResilientRedisCache, self).has_key(key, version), False)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            result = super().incr(key, delta, version)
        except REDIS_DOWN_ERRORS as exc:
            outages.redis.failed(exc)
            # What incr raises for a missing key: the callers already handle it.
            raise ValueError(f"Key {key!r} not found (Redis is unavailable).") from exc
        outages.redis.succeeded()
        return result

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        # Django's contract: the keys that failed to be set.
        return self._call(lambda: super(ResilientRedisCache, self).set_many(data, timeout, version), list(data))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        self._call(lambda: super(ResilientRedisCache, self).delete_many(keys, version), None)

    def clear(self) -> None:
        self._call(lambda: super(ResilientRedisCache, self).clear(), None)
