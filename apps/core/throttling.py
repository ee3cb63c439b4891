"""The API's rate limit, with a stated behaviour while Redis (where its counters live) is down."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from apps.core import outages
from apps.core.exceptions import ServiceUnavailable


class UserRateThrottleWithoutRedis(UserRateThrottle):
    """UserRateThrottle that, when its cache cannot be reached, fails as
    RATE_LIMIT_WHEN_REDIS_DOWN says: "open" lets requests through (logged once per outage),
    "closed" refuses them with 503 and Retry-After (not 429: the client did nothing wrong)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        allowed = super().allow_request(request, view)
        is_available = getattr(self.cache, "is_available", None)
        if self.rate is None or is_available is None or is_available():
            return allowed
        if settings.RATE_LIMIT_WHEN_REDIS_DOWN == "closed":
            raise ServiceUnavailable()
        outages.redis.note_once(
            "rate-limit-open", "API rate limit not enforced while redis is down (RATE_LIMIT_WHEN_REDIS_DOWN=open)"
        )
        return True
