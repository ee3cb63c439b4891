"""The dependency checks behind /health/: PostgreSQL, Redis (cache and broker), Stripe.

Each check is bounded in time and they run side by side, so the whole answer comes within
about two seconds whatever is down (the docker-compose probe gives up after four).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

from apps.core import outages

DATABASE_TIMEOUT_SECONDS = 2
REDIS_TIMEOUT_SECONDS = 1.0
STRIPE_TIMEOUT_SECONDS = 1.0
# Health is polled every few seconds by load balancers; Stripe is asked at most this often.
STRIPE_CACHE_SECONDS = 10.0

# Dependencies without which the portal cannot serve: their failure makes /health/ answer 503.
# Stripe's does not (pages, the API and the edge keep working; only card payments wait).
CRITICAL = ("database", "redis", "broker")

Check = dict[str, Any]


def _timed(check: Callable[[], Check | None]) -> Check | None:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a health check reports every failure, it never raises
        result = {"ok": False, "error": _describe(exc)}
    if result is None:  # not applicable here
        return None
    result.setdefault("ok", True)
    result.setdefault("ms", round((time.perf_counter() - started) * 1000, 1))
    return result


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def database_check() -> Callable[[], Check]:
    """SELECT 1 on a fresh connection made with Django's settings and a short connect timeout.

    A fresh connection, not the request's: it is bounded by connect_timeout even when the
    server is frozen (an established connection would wait on its socket for minutes), and
    it leaves the request's connection alone. The parameters are read in the calling thread
    (where tests and pytest-django set them); the check itself may run in another."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    params = wrapper.get_connection_params()
    if wrapper.vendor == "postgresql":
        params["connect_timeout"] = DATABASE_TIMEOUT_SECONDS

    def check() -> Check:
        try:
            raw = wrapper.get_new_connection(params)
            try:
                cursor = raw.cursor()
                cursor.execute("SELECT 1")
                cursor.fetchone()
            finally:
                raw.close()
        except Exception as exc:
            outages.database.failed(exc)
            raise
        outages.database.succeeded()
        return {}

    return check


def cache_check() -> Callable[[], Check]:
    """PING through the cache's own client (its pool, its short socket timeouts). The backend
    is taken in the calling thread: caches are per thread, and a new one would mean a new pool."""
    ping = getattr(caches["default"], "ping", None)

    def check() -> Check:
        if ping is None:
            return {"ok": True, "configured": False}
        try:
            ping()
        except Exception as exc:
            outages.redis.failed(exc)
            raise
        outages.redis.succeeded()
        return {}

    return check


def _same_redis_server(a: str, b: str) -> bool:
    left, right = urlsplit(a), urlsplit(b)
    return (left.hostname, left.port or 6379) == (right.hostname, right.port or 6379)


def check_broker() -> Check | None:
    """PING the Celery broker when it is a Redis server other than the cache's."""
    broker_url = settings.CELERY_BROKER_URL
    cache_url = str(settings.CACHES["default"].get("LOCATION", ""))
    if not broker_url.startswith(("redis://", "rediss://")) or _same_redis_server(broker_url, cache_url):
        return None

    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return {}


class _StripeProbe:
    """Stripe's reachability, asked at most once per STRIPE_CACHE_SECONDS per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: Check | None = None
        self._at = 0.0

    def reset(self) -> None:
        with self._lock:
            self._result, self._at = None, 0.0

    def __call__(self) -> Check:
        with self._lock:  # one probe at a time; concurrent polls share its answer
            if self._result is not None and time.monotonic() - self._at < STRIPE_CACHE_SECONDS:
                return {**self._result, "cached": True}
            result = _timed(_probe_stripe) or {}
            self._result, self._at = result, time.monotonic()
            return dict(result)


def _probe_stripe() -> Check:
    """Connect to the API host and read the first line of an HTTP answer, within 1 s.

    A TCP connect alone is not enough: a frozen server's kernel still accepts connections.
    Any HTTP status means Stripe is there to answer; no request is authenticated."""
    base = settings.STRIPE_API_BASE or "https://api.stripe.com"
    parts = urlsplit(base)
    host = parts.hostname or "api.stripe.com"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + STRIPE_TIMEOUT_SECONDS

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer from {host}:{port} within {STRIPE_TIMEOUT_SECONDS} s")
        return left

    sock: socket.socket = socket.create_connection((host, port), timeout=remaining())
    try:
        if parts.scheme == "https":
            sock.settimeout(remaining())
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(remaining())
        sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii"))
        sock.settimeout(remaining())
        first = sock.recv(16)
    finally:
        sock.close()
    if not first.startswith(b"HTTP/"):
        raise ConnectionError(f"{host}:{port} did not answer HTTP")
    return {"host": f"{host}:{port}"}


stripe_probe = _StripeProbe()


def check_stripe() -> Check:
    if not settings.STRIPE_SECRET_KEY:
        return {"ok": True, "configured": False}
    return stripe_probe()


# Checks that higher apps register (the edge nodes, apps.edge): each a function called in the
# request's thread once the database answered (it may read rows: which nodes to ask), that
# itself bounds its time and returns the check's result, or None when it does not apply.
# Their failure is critical: /health/ answers 503 naming them. /healthz (what docker-compose
# polls for the web container itself) runs without them.
_registered: dict[str, Callable[[], Check | None]] = {}


def health_check_register(name: str, check: Callable[[], Check | None]) -> None:
    _registered[name] = check


def run_checks(*, dependencies: bool = True) -> tuple[bool, dict[str, Check]]:
    """(healthy, {name: result}); healthy is False when a CRITICAL dependency failed, or, with
    `dependencies`, a registered check (the edge nodes)."""
    checks: dict[str, Callable[[], Check | None]] = {
        "database": database_check(),
        "redis": cache_check(),
        "broker": check_broker,
        "stripe": check_stripe,
    }
    # Side by side, so the answer takes the slowest check's time, not their sum.
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health") as pool:
        futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
        results = {name: future.result() for name, future in futures.items()}
    found = {name: result for name, result in results.items() if result is not None}
    healthy = all(found[name]["ok"] for name in CRITICAL if name in found)
    if dependencies and found["database"]["ok"]:
        for name, check in _registered.items():
            result = _timed(check)
            if result is not None:
                found[name] = result
                healthy = healthy and result["ok"]
    return healthy, found
