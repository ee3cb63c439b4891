"""Scheduled billing of recurring charges (listed in CELERY_IMPORTS)."""

from __future__ import annotations

from celery import shared_task

from apps.core.locks import job_lock


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def settle_charges() -> dict[str, int] | None:
    """Retry unpaid charges, suspend items past their grace period, resume paid ones."""
    from apps.billing.services import charges_settle

    with job_lock("settle-charges", timeout=660) as acquired:
        if not acquired:
            return None
        return charges_settle()


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def renew_channels() -> dict[str, int] | None:
    """Charge each SIP profile's channels for the month on its renewal day."""
    from apps.sip_profiles.renewals import channels_renew

    with job_lock("renew-channels", timeout=660) as acquired:
        if not acquired:
            return None
        return channels_renew()
