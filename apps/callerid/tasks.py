from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.callerid.services import landlines_expire
from apps.core.locks import job_lock


@shared_task(
    name="apps.callerid.tasks.expire_landlines",
    acks_late=True,
    max_retries=3,
    default_retry_delay=60,
    soft_time_limit=240,
    time_limit=300,
)
def expire_landlines() -> int | None:
    """Hourly: landlines proved more than 12 months ago stop being caller IDs."""
    with job_lock("callerid.expire_landlines", timeout=600) as acquired:
        if not acquired:
            return None  # the previous run is still going
        return landlines_expire(now=timezone.now())
