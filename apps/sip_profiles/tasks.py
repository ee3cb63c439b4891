from __future__ import annotations

from celery import shared_task

from apps.core.locks import job_lock
from apps.sip_profiles.renewals import channels_renew


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def renew_channels() -> dict[str, int] | None:
    """On each SIP profile's renewal day: charge its channels for the month."""
    with job_lock("renew-channels", timeout=660) as acquired:
        if not acquired:
            return None
        return channels_renew()
