"""Refunds: a paid purchase's money given back at Stripe, its credit taken back from the company
balance first, and put back if Stripe refuses."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account
from apps.billing.models import CreditPurchase, LedgerAccount, LedgerTransaction
from apps.billing.money import format_money
from apps.billing.purchases import clients
from apps.billing.purchases.records import Status
from apps.companies.models import Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict

# A refund still "in progress" after this long was interrupted (a crash): it may be continued.
REFUND_STALE_AFTER = timedelta(minutes=10)


def _refund_key(purchase: CreditPurchase, attempt: int) -> str:
    return f"refund:{purchase.public_id}" if attempt == 1 else f"refund:{purchase.public_id}:{attempt}"


def purchase_refund(*, actor: Actor, purchase: CreditPurchase, reason: str) -> CreditPurchase:
    """Give a paid purchase's money back, taking its credit back from the company balance, in
    three steps:

    1. claim: the credit is taken back first, in the ledger, so it cannot be spent while Stripe
       refunds (and a company balance too low to give it back stops the refund before Stripe is
       asked); the purchase is "refund in progress";
    2. Stripe refunds, outside any transaction; if it refuses, a correcting transaction puts the
       credit back;
    3. record: the purchase is refunded, with its audit event and the company's notice.

    A repeat (double click, retry) finds the refund done or in progress; one interrupted (a
    crash) is continued once it is stale."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give the reason for the refund.", field="reason")
    purchase = _refund_claim(actor=actor, purchase=purchase, reason=reason)
    if purchase.status == Status.REFUNDED:
        return purchase
    stripe_refund = ""
    if purchase.is_stripe and purchase.stripe_payment_intent:
        stripe_refund = _refund_at_stripe(actor=actor, purchase=purchase)
    return _refund_record(actor=actor, purchase=purchase, stripe_refund=stripe_refund)


def _refund_claim(*, actor: Actor, purchase: CreditPurchase, reason: str) -> CreditPurchase:
    """Step 1, in one transaction with the purchase locked: a paid purchase's credit is taken
    back and the purchase marked refunding; an interrupted refund is taken over. Returns the
    purchase, refunding (or refunded already: nothing more to do)."""
    now = timezone.now()
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status == Status.REFUNDED:
            return purchase
        if purchase.status == Status.REFUNDING:
            if purchase.refund_started_at and purchase.refund_started_at > now - REFUND_STALE_AFTER:
                raise Conflict("A refund of this purchase is already in progress.", code="refund_in_progress")
            purchase.refund_started_at = now  # interrupted earlier: continue it
            purchase.save(update_fields=["refund_started_at", "updated_at"])
            return purchase
        if purchase.status != Status.SUCCEEDED:
            raise ApplicationError("Only a paid purchase can be refunded.", code="not_refundable")
        credited = purchase.amount_received or purchase.amount
        attempt = purchase.refund_attempts + 1
        company = purchase.company
        txn, _ = ledger_post(
            actor=actor,
            key=_refund_key(purchase, attempt),
            kind=LedgerTransaction.Kind.REFUND,
            company=company,
            currency=purchase.currency,
            description=f"Refund of {purchase}",
            legs=[
                Leg(company_account(company), -credited),
                Leg(platform_account(LedgerAccount.Kind.REFUNDS, purchase.currency), credited),
            ],
        )
        purchase.status = Status.REFUNDING
        purchase.refund_attempts = attempt
        purchase.refund_transaction = txn
        purchase.refund_reason = reason
        purchase.refund_started_at = now
        purchase.failure_message = ""
        purchase.save(
            update_fields=[
                "status",
                "refund_attempts",
                "refund_transaction",
                "refund_reason",
                "refund_started_at",
                "failure_message",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action="credit.refund_started",
            company=company,
            target=purchase,
            changes={
                "status": {"before": Status.SUCCEEDED, "after": Status.REFUNDING},
                "refunded": {"before": None, "after": format_money(credited, purchase.currency)},
                "reason": {"before": None, "after": reason},
            },
        )
    return purchase


def _refund_record(*, actor: Actor, purchase: CreditPurchase, stripe_refund: str) -> CreditPurchase:
    """Step 3, in one transaction with the purchase locked: the refund is done. A purchase no
    longer refunding (recorded by a concurrent continuation) is returned as it is."""
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status != Status.REFUNDING:
            return purchase
        purchase.status = Status.REFUNDED
        purchase.refunded_at = timezone.now()
        purchase.stripe_refund = stripe_refund
        purchase.save(update_fields=["status", "refunded_at", "stripe_refund", "updated_at"])
        credited = purchase.amount_received or purchase.amount
        audit_record(
            actor=actor,
            action="credit.refunded",
            company=purchase.company,
            target=purchase,
            changes={"status": {"before": Status.REFUNDING, "after": Status.REFUNDED}},
        )
        notice_create(
            company=purchase.company,
            kind="credit_refunded",
            subject=f"Your purchase of {format_money(credited, purchase.currency)} was refunded",
            level=Notice.Level.INFO,
            message=f"Your purchase of {format_money(credited, purchase.currency)} on "
            f"{purchase.created_at:%d %b %Y} was refunded; the credit was taken back from your balance.",
        )
    return purchase


def _refund_at_stripe(*, actor: Actor, purchase: CreditPurchase) -> str:
    """Step 2, outside any transaction: Stripe refunds the payment (once per attempt: the
    idempotency key, and a refund found after a timeout). Returns the refund's id."""
    assert purchase.stripe_payment_intent
    purchase_id = str(purchase.public_id)
    try:
        refund = clients.refund_create(
            payment_intent=purchase.stripe_payment_intent,
            purchase_id=purchase_id,
            idempotency_key=_refund_key(purchase, purchase.refund_attempts),
        )
    except ApplicationError as error:
        # A timeout may hide a refund that was made: look before undoing anything.
        try:
            found = clients.refund_find(payment_intent=purchase.stripe_payment_intent, purchase_id=purchase_id)
        except ApplicationError:
            # Cannot tell: the purchase stays "refund in progress" and may be retried later.
            raise ApplicationError(
                f"Stripe could not be reached ({error.message}). The credit is held; try the refund again later.",
                code="refund_unknown",
            ) from error
        if found is None:
            _refund_undo(actor=actor, purchase=purchase, message=error.message)
            raise ApplicationError(
                f"Stripe did not refund: {error.message} The credit was put back.", code="refund_failed"
            ) from error
        refund = found
    return refund.id


def _refund_undo(*, actor: Actor, purchase: CreditPurchase, message: str) -> None:
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status != Status.REFUNDING:
            return
        credited = purchase.amount_received or purchase.amount
        company = purchase.company
        ledger_post(
            actor=actor,
            key=f"refund-undo:{purchase.public_id}:{purchase.refund_attempts}",
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            company=company,
            currency=purchase.currency,
            description=f"Refund not made, credit restored: {purchase}",
            legs=[
                Leg(platform_account(LedgerAccount.Kind.REFUNDS, purchase.currency), -credited),
                Leg(company_account(company), credited),
            ],
        )
        purchase.status = Status.SUCCEEDED
        purchase.refund_transaction = None
        purchase.refund_started_at = None
        purchase.failure_message = f"Refund failed: {message}"[:500]
        purchase.save(
            update_fields=["status", "refund_transaction", "refund_started_at", "failure_message", "updated_at"]
        )
        audit_record(
            actor=actor,
            action="credit.refund_failed",
            company=company,
            target=purchase,
            changes={"status": {"before": Status.REFUNDING, "after": Status.SUCCEEDED}, "error": message},
        )
