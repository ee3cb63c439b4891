from __future__ import annotations

from celery import shared_task

from apps.bundles.services import bundle_periods_notify, bundles_renew
from apps.core.locks import job_lock


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def renew_bundles() -> dict[str, int] | None:
    """On each SIP profile's renewal day: start its US minute bundles' new period and charge
    them. (Rating also starts due periods before every run, so no call is rated before its
    period exists.)"""
    with job_lock("renew-bundles", timeout=660) as acquired:
        if not acquired:
            return None
        renewed = bundles_renew()
        return {"bundles_renewed": renewed["renewed"], "bundles_failed": renewed["failed"]}


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def notify_bundle_periods(period_ids: list[int]) -> int:
    """The 80% and 100% notices of bundle periods a rating batch used: a task of its own, so
    that rating never waits for notices and e-mails. Safe to run twice (each notice is claimed
    with a conditional UPDATE)."""
    return bundle_periods_notify(period_ids)
