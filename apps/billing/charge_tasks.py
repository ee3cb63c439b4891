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
    """On each SIP profile's renewal day: start its US minute bundles' new period and charge
    them, then charge its channels for the month."""
    from apps.bundles.services import bundles_renew
    from apps.sip_profiles.renewals import channels_renew

    with job_lock("renew-channels", timeout=660) as acquired:
        if not acquired:
            return None
        # Bundles first: rating gives minutes only to calls that start in a period that exists,
        # so the new periods should appear as soon after midnight as possible.
        bundles = bundles_renew()
        channels = channels_renew()
        return {**channels, "bundles_renewed": bundles["renewed"], "bundles_failed": bundles["failed"]}
