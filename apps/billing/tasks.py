from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.billing import idempotency, purchases, webhooks
from apps.core.locks import job_lock

# The locks outlive the hard time limits, so a killed run frees its lock by expiry only.
RECONCILE_SOFT_LIMIT = 240
RECONCILE_HARD_LIMIT = 300


@shared_task(acks_late=True, soft_time_limit=RECONCILE_SOFT_LIMIT, time_limit=RECONCILE_HARD_LIMIT)
def reconcile_credit_purchases() -> dict[str, int] | None:
    """Every few minutes: credit card and PayPal purchases Stripe says were paid but nobody told
    us about (a lost webhook, a closed browser), cancel those left unpaid, retry failed events."""
    with job_lock("billing-reconcile-purchases", timeout=RECONCILE_HARD_LIMIT + 60) as acquired:
        if not acquired:
            return None
        now = timezone.now()
        return {**purchases.purchases_reconcile(now=now), **webhooks.stripe_events_retry(now=now)}


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def purge_idempotent_requests() -> int:
    """Daily: forget answers kept for Idempotency-Key replays once they are old."""
    return idempotency.idempotent_requests_purge(now=timezone.now())
