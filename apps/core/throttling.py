"""The API's rate limits, counted in the shared cache (Redis), with a stated behaviour while
Redis is down.

DRF's own throttles keep a list of request times per client in the cache and write it back
after reading it: requests that arrive together (two gunicorn workers, two hosts, or threads
of one) each read the same list, and all but one of their writes are lost, so a limit of 20
let 40 of 80 parallel requests through. Here every request is one atomic INCR of the client's
counter (`cache.add` opens the window with its expiry, `cache.incr` is Redis's INCRBY), so all
processes sharing the Redis share one budget exactly.

- `ApiRateThrottle`: API_RATE_LIMIT per API key (a key's own budget, whoever created it), per
  user for browser sessions, per client address otherwise.
- `auth_failure_check` / `auth_failure_record`: failed API-key authentication counted per client
  address (API_AUTH_FAILURE_RATE); past it, every key from that address is refused with 429
  until the window ends, so keys cannot be guessed at speed.

The client address is `apps.core.middleware.client_ip`: X-Forwarded-For only through
TRUSTED_PROXY_COUNT proxies of ours (DRF's NUM_PROXIES is set to the same number).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core import outages
from apps.core.cache import REDIS_DOWN_ERRORS
from apps.core.exceptions import ServiceUnavailable
from apps.core.middleware import client_ip

KEY_PREFIX = "rate"


def parse_rate(rate: str) -> tuple[int, int]:
    """ "20/minute" → (20, 60). DRF's notation: s, m, h, d (or second, minute, hour, day)."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[:1]]
    return int(count), seconds


class _Window:
    """A fixed window opened by the first request it counts and lasting `duration` seconds.

    On Redis, counting is one round trip: a pipeline of SET NX EX (opens the window with its
    expiry), INCR and PTTL (the time left, for Retry-After), optionally with another window's
    GET and PTTL (the failed-authentication count of a key verified from memory). Elsewhere
    (the laptop's in-process cache) it is cache.add and cache.incr."""

    def __init__(self, key: str, limit: int, duration: int) -> None:
        self.key, self.limit, self.duration = key, limit, duration
        self.started_key = f"{key}:t"
        self._left_ms: int | None = None  # from Redis: the window's time left
        self._known: int | None = None  # from Redis: the count read with another window's hit

    def hit(self, *, also: _Window | None = None) -> int:
        """Count one; the count so far in this window (0 when the cache cannot count).
        `also`: another window read in the same round trip (its count()'s value, kept)."""
        if isinstance(caches["default"], RedisCache):
            return self._redis(count=True, also=also)
        if default_cache.add(self.key, 0, timeout=self.duration):
            default_cache.set(self.started_key, time.time(), timeout=self.duration)
        try:
            return int(default_cache.incr(self.key))
        except ValueError:  # expired between add and incr, or Redis is down
            if _redis_is_down():
                return 0
            default_cache.add(self.key, 0, timeout=self.duration)
            return int(default_cache.incr(self.key))

    def count(self) -> int:
        if isinstance(caches["default"], RedisCache):
            return self._redis(count=False)
        return int(default_cache.get(self.key) or 0)

    def _redis(self, *, count: bool, also: _Window | None = None) -> int:
        backend = caches["default"]
        key = backend.make_and_validate_key(self.key)
        pipe = backend._cache.get_client(key, write=True).pipeline(transaction=False)  # type: ignore[attr-defined]
        if count:
            pipe.set(key, 0, ex=self.duration, nx=True)
            pipe.incr(key)
        else:
            pipe.get(key)
        pipe.pttl(key)
        if also is not None:
            other = backend.make_and_validate_key(also.key)
            pipe.get(other)
            pipe.pttl(other)
        try:
            answers = pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            outages.redis.failed(exc)
            if also is not None:
                also._known = 0
            return 0
        outages.redis.succeeded()
        if also is not None:
            also._known, also._left_ms = int(answers[-2] or 0), int(answers[-1])
            answers = answers[:-2]
        self._left_ms = int(answers[-1])
        return int(answers[-2] or 0)

    def wait(self) -> int:
        """Whole seconds until this window ends (at least 1)."""
        if self._left_ms is not None:
            return max(1, -(-self._left_ms // 1000)) if self._left_ms > 0 else self.duration
        started = default_cache.get(self.started_key)
        if started is None:
            return self.duration
        return max(1, int(float(started) + self.duration - time.time() + 0.999))


def _when_redis_is_down(what: str) -> None:
    """RATE_LIMIT_WHEN_REDIS_DOWN: "open" lets the request through (logged once per outage),
    "closed" refuses it with 503 and Retry-After (not 429: the client did nothing wrong)."""
    if settings.RATE_LIMIT_WHEN_REDIS_DOWN == "closed":
        raise ServiceUnavailable()
    outages.redis.note_once(
        f"open:{what}", f"API {what} not enforced while redis is down (RATE_LIMIT_WHEN_REDIS_DOWN=open)"
    )


def _redis_is_down() -> bool:
    is_available = getattr(default_cache, "is_available", None)
    return is_available is not None and not is_available()


def client_ident(request: Any) -> str:
    return client_ip(getattr(request, "_request", request)) or "unknown"


class ApiRateThrottle(BaseThrottle):
    """API_RATE_LIMIT requests per window, per API key, session user or client address."""

    def __init__(self) -> None:
        self.window: _Window | None = None

    @staticmethod
    def budget_of(request: Request) -> str:
        ident = getattr(request.auth, "rate_limit_ident", None)
        if ident:
            return str(ident)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return f"ip:{client_ident(request)}"

    def allow_request(self, request: Request, view: Any) -> bool:
        # A key verified from memory skipped the failed-authentication check before its
        # look-up (apps.accounts.authentication): it is made here, in the same round trip.
        failures = _auth_failure_window(request) if getattr(request, "auth_failures_unchecked", False) else None
        rate = settings.API_RATE_LIMIT
        if not rate:
            if failures is not None:
                auth_failure_check(request)
            return True
        limit, duration = parse_rate(rate)
        self.window = _Window(f"{KEY_PREFIX}:api:{self.budget_of(request)}", limit, duration)
        count = self.window.hit(also=failures)
        if _redis_is_down():
            _when_redis_is_down("rate limit")
            return True
        if failures is not None:
            _refuse_if_failing(failures, failures._known if failures._known is not None else failures.count())
        return count <= limit

    def wait(self) -> float | None:
        return None if self.window is None else float(self.window.wait())


def _auth_failure_window(request: Any) -> _Window | None:
    rate = settings.API_AUTH_FAILURE_RATE
    if not rate:
        return None
    limit, duration = parse_rate(rate)
    return _Window(f"{KEY_PREFIX}:auth-failed:{client_ident(request)}", limit, duration)


def auth_failure_check(request: Any) -> None:
    """Before a key is looked at: Throttled (429 with Retry-After) when its source address has
    failed more than API_AUTH_FAILURE_RATE allows."""
    window = _auth_failure_window(request)
    if window is None:
        return
    count = window.count()
    if _redis_is_down():
        _when_redis_is_down("limit on failed authentication")
        return
    _refuse_if_failing(window, count)


def _refuse_if_failing(window: _Window, count: int) -> None:
    if count >= window.limit:
        raise Throttled(
            wait=window.wait(),
            detail="Too many failed authentication attempts from your address. Try again later.",
        )


def auth_failure_record(request: Any) -> None:
    window = _auth_failure_window(request)
    if window is not None:
        window.hit()
