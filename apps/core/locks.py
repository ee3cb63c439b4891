"""A lock shared by every worker, so a periodic job never runs twice at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def job_lock(name: str, *, timeout: int = 600) -> Iterator[bool]:
    """Yields True when this run holds the lock, False when another run does.

    cache.add is atomic in Redis (SET NX); the timeout frees the lock of a worker
    that died. The token check keeps a slow run from releasing a later run's lock.
    """
    key = f"lock:{name}"
    token = uuid.uuid4().hex
    acquired = cache.add(key, token, timeout)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)
