from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.billing import idempotency
from apps.billing.charges.services import charges_settle
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import IdempotentRequest, RechargeAttempt
from apps.billing.money import format_money
from apps.billing.purchases import services as purchases
from apps.billing.purchases import webhooks
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge import sweep as recharge_sweep
from apps.companies.emails import EMAIL_TASK, email_members, email_subject
from apps.companies.models import Capability, Company, Role, role_can
from apps.core.locks import job_lock
from apps.core.once import KEEP_FOR as ONCE_KEEP_FOR
from apps.core.once import once_tokens_purge

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


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def settle_charges() -> dict[str, int] | None:
    """Retry unpaid charges, suspend items past their grace period, resume paid ones."""
    with job_lock("settle-charges", timeout=660) as acquired:
        if not acquired:
            return None
        return charges_settle()


PURGE_SOFT_LIMIT = 50
PURGE_HARD_LIMIT = 60
PURGE_BATCH = 5000
PURGE_LIMIT = 200_000


@shared_task(acks_late=True, soft_time_limit=PURGE_SOFT_LIMIT, time_limit=PURGE_HARD_LIMIT)
def purge_idempotent_requests() -> int | None:
    """Daily: forget answers kept for Idempotency-Key replays once they are old, and the page
    forms' one-time tokens of the lower apps (apps.core.once) likewise.

    In batches of PURGE_BATCH rows, each its own statement, so no run holds long locks or
    one huge transaction; a run that is killed keeps what it deleted and the next goes on.
    """
    with job_lock("billing-purge-idempotent-requests", timeout=PURGE_HARD_LIMIT + 60) as acquired:
        if not acquired:
            return None
        old = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - idempotency.KEEP_FOR)
        deleted = 0
        while deleted < PURGE_LIMIT:
            ids = list(old.order_by("pk").values_list("pk", flat=True)[:PURGE_BATCH])
            if not ids:
                break
            count, _ = IdempotentRequest.objects.filter(pk__in=ids).delete()
            deleted += count
        return deleted + once_tokens_purge(before=timezone.now() - ONCE_KEEP_FOR)


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
        return recharge_sweep.auto_recharge_sweep(now=timezone.now())


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def company_auto_recharge(company_id: int, trigger: str) -> bool:
    """One company's auto-recharge, if due. Safe to run twice: the claim decides (apps.billing.recharge.company)."""
    return company_recharge.company_recharge_run(company_id=company_id, trigger=trigger) is not None


@shared_task(**EMAIL_TASK)
def send_auto_recharge_charged_email(attempt_id: int) -> None:
    """Auto-recharge charged a card: how much, which card, why, and the balance after, to every
    member whose role may manage billing (owners, admins, billing)."""
    attempt = RechargeAttempt.objects.select_related("company", "purchase").filter(pk=attempt_id).first()
    if attempt is None or attempt.purchase is None:
        return
    company, purchase = attempt.company, attempt.purchase
    amount = format_money(attempt.amount, attempt.currency)
    card = (
        f"{purchase.card_brand.title() or 'Card'} ending {purchase.card_last4}"
        if purchase.card_last4
        else "your default card"
    )
    auto = getattr(company, "auto_recharge", None)
    if attempt.trigger == RechargeAttempt.Trigger.UNPAID_CHARGE:
        why = "a charge of your account could not be paid from the balance"
    elif auto is not None:
        why = f"your balance fell below the threshold of {format_money(auto.threshold, attempt.currency)}"
    else:
        why = "your balance fell below the auto-recharge threshold"
    site = settings.SITE_URL.rstrip("/")
    email_members(
        company=company,
        roles=[role for role in Role if role_can(role, Capability.MANAGE_BILLING)],
        subject=email_subject(f"Auto-recharge charged {amount} to {card}", company),
        message=(
            f"Auto-recharge charged {amount} to {card} for {company.name} on "
            f"{(attempt.finished_at or timezone.now()):%d %b %Y %H:%M} UTC, because {why}.\n\n"
            f"The company balance is now {format_money(company_balance(company), attempt.currency)}.\n"
            f"Receipt: {site}{reverse('credit-receipt', args=[purchase.public_id])}\n"
            f"Auto-recharge settings: {site}{reverse('credit')}\n"
        ),
    )


@shared_task(**EMAIL_TASK)
def send_auto_recharge_failure_email(company_id: int, message: str) -> None:
    """Billing members hear of a failed auto-recharge. Owners and admins get the dashboard
    notice's own e-mail (apps.companies.tasks.send_notice_email), so nobody gets two."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    email_members(
        company=company,
        roles=[Role.BILLING],
        subject=email_subject(_first_line(message), company),
        message=f"{message}\n\n{settings.SITE_URL.rstrip('/')}{reverse('credit')}\n",
    )


def _first_line(message: str) -> str:
    """The failure notice's first sentence ("Auto-recharge could not charge 50.00 GBP: …")."""
    sentence = message.split(". ", 1)[0].rstrip(".")
    return sentence if len(sentence) <= 120 else sentence[:119].rstrip() + "…"
