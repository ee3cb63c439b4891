from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from apps.billing import idempotency, purchases, recharge, webhooks
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


# The sweep runs every few minutes; a run never overlaps the next (the lock outlives the hard limit).
SWEEP_SOFT_LIMIT = 240
SWEEP_HARD_LIMIT = 300


@shared_task(acks_late=True, soft_time_limit=SWEEP_SOFT_LIMIT, time_limit=SWEEP_HARD_LIMIT)
def auto_recharge_sweep() -> dict[str, int] | None:
    """Every few minutes: finish auto-recharges whose payment settled or that were interrupted,
    and recharge companies and SIP profiles below their threshold."""
    with job_lock("billing-auto-recharge-sweep", timeout=SWEEP_HARD_LIMIT + 60) as acquired:
        if not acquired:
            return None
        return recharge.auto_recharge_sweep(now=timezone.now())


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def company_auto_recharge(company_id: int, trigger: str) -> bool:
    """One company's auto-recharge, if due. Safe to run twice: the claim decides (apps.billing.recharge)."""
    return recharge.company_recharge_run(company_id=company_id, trigger=trigger) is not None


@shared_task(acks_late=True, max_retries=5, default_retry_delay=60, soft_time_limit=50, time_limit=60)
def send_auto_recharge_failure_email(company_id: int, message: str) -> None:
    """Billing members hear of a failed auto-recharge. Owners and admins get the dashboard
    notice's own e-mail (apps.companies.tasks.send_notice_email), so nobody gets two."""
    from apps.companies.models import Company, Membership, Role

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    recipients = list(
        Membership.objects.for_company(company).filter(role=Role.BILLING).values_list("user__email", flat=True)
    )
    if recipients:
        send_mail(
            subject=f"[Skype Manager] {company.name}: auto-recharge failed",
            message=f"{message}\n\n{settings.SITE_URL.rstrip('/')}{reverse('credit')}\n",
            from_email=None,
            recipient_list=recipients,
        )
