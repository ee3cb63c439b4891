"""Reads of the accounts app: the API key a request presents.

An integrator's poll costs one API-key look-up per request, so the key a process has just
verified is kept in that process for API_KEY_CACHE_SECONDS (5 s): a polling client is
authenticated without a query. What that costs in freshness, and why it is safe:

- A revoked key (by its page, the API, or its creator leaving the company) is forgotten at
  once by the process that revoked it (on commit); every other process stops accepting it
  within API_KEY_CACHE_SECONDS. The same bound holds for a deactivated creator.
- Only a key that verified (its SHA-256 matched) is kept, under that hash: a guessed key is
  never answered from memory, and is looked up (and counted as a failure) as before.
- Each request gets its own copy of the key with its company and creator (unpickled), so
  nothing one request changes on them is seen by another.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle  # our own objects, pickled and unpickled by this process only
import threading
import time

from django.conf import settings

from apps.accounts.models import ApiKey

# Bounded: a process that saw more keys than this within the time-to-live starts over.
_MAX_KEYS = 10_000
_verified: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_from_memory(*, key: str) -> ApiKey | None:
    """The key whose secret is `key` if this process verified it less than
    API_KEY_CACHE_SECONDS ago (active then); else None. No query."""
    cached = _verified.get(api_key_hash(key))
    if cached is None or cached[0] <= time.monotonic():
        return None
    return pickle.loads(cached[1])  # noqa: S301 - pickled below, by this process


def api_key_for_secret(*, key: str) -> ApiKey | None:
    """The key (with its company and creator) whose secret is `key`, revoked or not; None when
    no key has it. One query; an active key is then kept in memory (api_key_from_memory)."""
    digest = api_key_hash(key)
    prefix = "_".join(key.split("_")[:2])
    api_key = ApiKey.objects.select_related("company", "created_by").filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl > 0 and api_key.revoked_at is None and api_key.created_by.is_active:
        with _lock:
            if len(_verified) >= _MAX_KEYS:
                _verified.clear()
            _verified[digest] = (time.monotonic() + ttl, pickle.dumps(api_key))
    return api_key


def api_key_cache_clear() -> None:
    """Forget every key this process verified (a key was revoked: revocations are rare)."""
    with _lock:
        _verified.clear()
