"""Company auto-recharge.

Company auto-recharge charges a saved card off-session for `amount` when the company balance is
below `threshold`: asked for after a debit (company_recharge_requested, called after commit by
allocations and charges) and by the periodic sweep (apps.billing.recharge.sweep). Each recharge is a
RechargeAttempt that moves claimed (in flight) → succeeded / failed, in three steps:

1. claim, in one transaction holding the AutoRecharge row lock: enabled, balance below the
   threshold, no attempt in flight, the monthly limit not reached, a new threshold crossing,
   no recent failure to back off from; then the attempt is created in flight;
2. charge, outside any transaction (purchase_charge_off_session), with the CreditPurchase row
   created and linked to the attempt, under the attempt's row lock, before Stripe is called;
3. record the outcome in a new transaction (or, when Stripe's answer is unknown, later: the
   sweep finishes in-flight attempts once their purchase is settled by the webhook or the
   reconcile task).

Guarantees, and what enforces each:
- at most one attempt in flight per company: checked under the AutoRecharge row lock, and a
  partial unique index (recharge_one_in_flight_per_company) in the database;
- one threshold crossing makes at most one charge: a claim needs a company ledger entry at or
  above the threshold after the watermark (the account's last ledger entry id when claimed) of
  the last succeeded attempt since the settings were saved; an attempt in flight blocks any
  other; a failed attempt charged nothing, so it may be retried (after RETRY_AFTER_FAILURE);
- an attempt is charged at most once: only the process that links a purchase to it, while it
  is in flight and has none, calls Stripe. A retried task, a second trigger or the sweep find it
  linked or finished. Local Stripe ignores idempotency keys, so this state decides, not the key;
- a worker killed between claim and charge: an attempt with no purchase never reached Stripe;
  after STALE_AFTER the sweep fails it under the row lock (a late worker then finds it finished
  and calls nothing). Killed after linking, or a Stripe timeout: the purchase stays pending and
  the attempt in flight (so nothing else is charged) until the purchase settles;
- the monthly limit: succeeded and in-flight attempts of the calendar month (UTC) plus the
  amount may not exceed it, checked under the same lock; it resets on the 1st;
- three card failures in a row switch it off, with the reason kept and shown.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.ledger.services import company_account
from apps.billing.models import AutoRecharge, CreditPurchase, LedgerAccount, RechargeAttempt, SavedPaymentMethod
from apps.billing.money import format_money
from apps.billing.purchases import clients
from apps.billing.purchases.records import purchase_amount
from apps.billing.purchases.selectors import default_card_for
from apps.billing.purchases.services import purchase_charge_off_session
from apps.billing.recharge.rules import (
    SYSTEM,
    ZERO,
    crossed,
    last_entry_id,
    month_of,
    settings_errors_raise,
    settings_save,
    settings_snapshot,
    settings_values,
)
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.enqueue import enqueue, enqueue_on_commit
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

FAILURES_TO_SWITCH_OFF = 3
# A declined card is not retried at once: the sweep would otherwise use up the three tries in minutes.
RETRY_AFTER_FAILURE = timedelta(hours=1)

Status = RechargeAttempt.Status
Trigger = RechargeAttempt.Trigger


class _AttemptClosed(Exception):
    """The attempt was finished (or linked) by another process before this one charged it."""


# --- Settings ------------------------------------------------------------------------------------


def auto_recharge_update(
    *,
    actor: Actor,
    company: Company,
    enabled: bool,
    amount: Any,
    threshold: Any,
    monthly_limit: Any,
    payment_method: SavedPaymentMethod | None = None,
) -> AutoRecharge:
    """Save the company's auto-recharge settings. Saving re-arms it: the next time the balance is
    below the threshold it may charge, whatever earlier attempts did. Turning it on again clears
    the failures that switched it off."""
    errors: dict[str, list[str]] = {}
    values = settings_values(
        errors,
        amount=lambda: purchase_amount(amount, company=company),
        threshold=threshold,
        monthly_limit=monthly_limit,
    )
    if payment_method is not None and payment_method.company_id != company.pk:
        errors.setdefault("payment_method", []).append("Choose one of your company's saved cards.")
    if enabled and payment_method is None and default_card_for(company) is None:
        errors.setdefault("payment_method", []).append(
            "Save a card first: auto-recharge charges a saved card (tick “Save this card” when you pay)."
        )
    settings_errors_raise(errors)
    now = timezone.now()
    with transaction.atomic():
        auto = AutoRecharge.objects.select_for_update().filter(company=company).first()
        before = settings_snapshot(auto)
        if auto is None:
            auto = AutoRecharge(company=company)
        if enabled and not auto.enabled:
            auto.disabled_reason = ""
        auto.payment_method = payment_method
        settings_save(
            actor=actor,
            auto=auto,
            before=before,
            enabled=enabled,
            values=values,
            now=now,
            action="auto_recharge.updated",
            company=company,
            target=auto,
        )
    return auto


def company_month_total(company: Company, *, month: date) -> Decimal:
    """What auto-recharge charged (or is charging) this calendar month."""
    total = (
        RechargeAttempt.objects.for_company(company)
        .filter(month=month, status__in=[Status.SUCCEEDED, Status.IN_FLIGHT])
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or ZERO


# --- Company auto-recharge: trigger, claim, charge, finish -----------------------------------


def company_recharge_requested(*, company_id: int, trigger: str) -> None:
    """A debit may have taken the company balance below its threshold: when a recharge may be
    due, queue it. Cheap when auto-recharge is off or the balance is fine. Call after commit."""
    auto = AutoRecharge.objects.filter(company_id=company_id, enabled=True).values_list("threshold", flat=True)
    threshold = auto.first()
    if threshold is None:
        return
    balance = (
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.COMPANY_BALANCE, company_id=company_id)
        .values_list("balance", flat=True)
        .first()
        or ZERO
    )
    if balance >= threshold:
        return
    # Lazy: apps.billing.tasks imports this module (import cycle).
    from apps.billing.tasks import company_auto_recharge

    # Lost while the broker is down: the periodic sweep finds the balance below its threshold.
    enqueue(company_auto_recharge, company_id, trigger if trigger in Trigger.values else Trigger.THRESHOLD)


def company_recharge_run(*, company_id: int, trigger: str, now: datetime | None = None) -> RechargeAttempt | None:
    """Claim, charge and record one company auto-recharge if one is due. Returns the attempt
    made (succeeded, failed, or in flight while Stripe's answer is unknown), or None."""
    claimed = _claim(company_id=company_id, trigger=trigger, now=now or timezone.now())
    if claimed is None:
        return None
    attempt, card = claimed
    return _charge(attempt, card)


def _claim(*, company_id: int, trigger: str, now: datetime) -> tuple[RechargeAttempt, SavedPaymentMethod | None] | None:
    with transaction.atomic():
        # The row lock serialises every claim for this company: the checks below cannot race.
        auto = (
            AutoRecharge.objects.select_for_update(of=("self",))
            .select_related("company", "payment_method")
            .filter(company_id=company_id)
            .first()
        )
        if auto is None or not auto.enabled:
            return None
        company = auto.company
        if RechargeAttempt.objects.for_company(company).filter(status=Status.IN_FLIGHT).exists():
            return None
        # The balance as locked here is the balance at commit: a concurrent allocation or
        # take-back waits for this claim (or this claim for it), so an attempt is only ever
        # recorded while the balance really is below the threshold. Same lock order as the
        # ledger's postings (settings row first is never taken by them).
        account = LedgerAccount.objects.select_for_update().get(pk=company_account(company).pk)
        if account.balance >= auto.threshold:
            return None
        if auto.consecutive_failures and auto.last_failure_at and now < auto.last_failure_at + RETRY_AFTER_FAILURE:
            return None
        month = month_of(now)
        if company_month_total(company, month=month) + auto.amount > auto.monthly_limit:
            return None
        charged = RechargeAttempt.objects.for_company(company).filter(status=Status.SUCCEEDED)
        if auto.armed_at is not None:
            charged = charged.filter(created_at__gte=auto.armed_at)
        last = charged.order_by("-created_at", "-id").values_list("ledger_watermark", flat=True).first()
        if not crossed(account_id=account.pk, threshold=auto.threshold, last_watermark=last):
            return None
        attempt = RechargeAttempt.objects.create(
            company=company,
            amount=auto.amount,
            currency=company.currency,
            month=month,
            trigger=trigger,
            ledger_watermark=last_entry_id(account.pk),
        )
        card = auto.payment_method or default_card_for(company)
    return attempt, card


def _charge(attempt: RechargeAttempt, card: SavedPaymentMethod | None) -> RechargeAttempt:
    if card is None:
        return _finish(
            attempt.pk,
            succeeded=False,
            message="There is no saved card to charge. Save a card on the Credit page.",
            card_failure=True,
        )

    def link(purchase: CreditPurchase) -> None:
        # In the purchase's own transaction, before Stripe is called: whoever links, charges.
        locked = RechargeAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status != Status.IN_FLIGHT or locked.purchase_id is not None:
            raise _AttemptClosed
        locked.purchase = purchase
        locked.save(update_fields=["purchase"])

    try:
        purchase_charge_off_session(
            actor=SYSTEM,
            company=attempt.company,
            amount=attempt.amount,
            card=card,
            idempotency_key=f"recharge:{attempt.public_id}",
            on_created=link,
        )
    except _AttemptClosed:
        return RechargeAttempt.objects.get(pk=attempt.pk)
    except ApplicationError as error:
        purchase_status = RechargeAttempt.objects.values_list("purchase__status", flat=True).get(pk=attempt.pk)
        if purchase_status is None or purchase_status == CreditPurchase.Status.FAILED:
            # Refused before anything could be charged (no purchase, or its purchase failed
            # uncharged): finished now, so the next crossing check may charge again.
            return _finish(
                attempt.pk,
                succeeded=False,
                message=error.message,
                # Stripe unreachable is not the company's failure; a rule it must fix is.
                card_failure=not isinstance(error, clients.PaymentProviderError),
                only_unlinked=purchase_status is None,
            )
        # Stripe's answer to the charge was lost: the purchase settles later, then the attempt.
        logger.warning("Auto-recharge %s: outcome unknown (%s)", attempt.public_id, error.message)
        return RechargeAttempt.objects.get(pk=attempt.pk)
    return attempt_settle(attempt_id=attempt.pk)


def attempt_settle(*, attempt_id: int) -> RechargeAttempt:
    """Finish an in-flight attempt whose purchase has settled; otherwise leave it in flight."""
    attempt = RechargeAttempt.objects.select_related("purchase").get(pk=attempt_id)
    purchase = attempt.purchase
    if attempt.status != Status.IN_FLIGHT or purchase is None:
        return attempt
    if purchase.status in CreditPurchase.CREDITED:
        return _finish(attempt_id, succeeded=True)
    if purchase.status == CreditPurchase.Status.FAILED:
        return _finish(attempt_id, succeeded=False, message=purchase.failure_message or "The card was declined.")
    if purchase.status == CreditPurchase.Status.CANCELED:
        # Expired unpaid (its outcome was never learnt): not the card's failure.
        return _finish(attempt_id, succeeded=False, message="The payment did not complete.", card_failure=False)
    return attempt


def _finish(
    attempt_id: int,
    *,
    succeeded: bool,
    message: str = "",
    card_failure: bool = True,
    only_unlinked: bool = False,
) -> RechargeAttempt:
    now = timezone.now()
    with transaction.atomic():
        company_id = RechargeAttempt.objects.values_list("company_id", flat=True).get(pk=attempt_id)
        # The same lock order as a claim (settings row, then attempt): no deadlock.
        auto = AutoRecharge.objects.select_for_update(of=("self",)).select_related("company").get(company_id=company_id)
        attempt = RechargeAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != Status.IN_FLIGHT or (only_unlinked and attempt.purchase_id is not None):
            return attempt
        company = auto.company
        attempt.status = Status.SUCCEEDED if succeeded else Status.FAILED
        attempt.finished_at = now
        attempt.error = message[:500]
        attempt.card_failure = not succeeded and card_failure
        attempt.save(update_fields=["status", "finished_at", "error", "card_failure"])
        amount = format_money(attempt.amount, attempt.currency)
        if succeeded:
            if auto.consecutive_failures:
                auto.consecutive_failures = 0
                auto.save(update_fields=["consecutive_failures", "updated_at"])
            audit_record(
                actor=SYSTEM,
                action="auto_recharge.succeeded",
                company=company,
                target=attempt,
                changes={"charged": {"before": None, "after": amount}},
            )
            # Lazy: apps.billing.tasks imports this module (import cycle).
            from apps.billing.tasks import send_auto_recharge_charged_email

            # Money taken from a card unasked: the people who look after billing hear of it.
            enqueue_on_commit(send_auto_recharge_charged_email, attempt.pk)
            return attempt
        audit_record(
            actor=SYSTEM,
            action="auto_recharge.failed",
            company=company,
            target=attempt,
            changes={"error": {"before": None, "after": attempt.error}},
        )
        if not attempt.card_failure:
            return attempt
        auto.consecutive_failures += 1
        auto.last_failure_at = now
        auto.last_failure_message = attempt.error
        text = f"Auto-recharge could not charge {amount}: {attempt.error}"
        if auto.consecutive_failures >= FAILURES_TO_SWITCH_OFF and auto.enabled:
            auto.enabled = False
            auto.disabled_reason = (
                f"Switched off after {auto.consecutive_failures} failed recharges in a row "
                f"(last on {now:%d %b %Y}: {attempt.error})"
            )[:300]
            text += " Auto-recharge is now switched off; check your card and turn it on again."
            audit_record(
                actor=SYSTEM,
                action="auto_recharge.disabled",
                company=company,
                target=auto,
                changes={"enabled": {"before": True, "after": False}, "reason": auto.disabled_reason},
            )
        auto.save()
        notice_create(
            company=company,
            kind="auto_recharge_failed",
            subject=f"Auto-recharge could not charge {amount}" + ("; it is switched off" if not auto.enabled else ""),
            level=Notice.Level.ERROR,
            message=text,
        )
        # Lazy: apps.billing.tasks imports this module (import cycle).
        from apps.billing.tasks import send_auto_recharge_failure_email

        # The notice above is the record; the e-mail is best effort while the broker is down.
        enqueue_on_commit(send_auto_recharge_failure_email, company_id, text)
    return attempt


def attempt_recover_unlinked(attempt_id: int) -> bool:
    """Fail an attempt whose worker died before linking a purchase (so before calling Stripe)."""
    attempt = _finish(
        attempt_id,
        succeeded=False,
        message="Interrupted before the card was charged; nothing was charged.",
        card_failure=False,
        only_unlinked=True,
    )
    return attempt.status != Status.IN_FLIGHT
