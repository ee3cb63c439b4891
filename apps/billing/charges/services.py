"""What companies are charged for, paid from the company balance through the ledger.

Every charge (a new profile's channels, more channels, a number, each renewal) is paid at
once when the balance covers it. One that cannot be paid asks for the company's
auto-recharge and gives the item a grace period of GRACE_DAYS, with a retry and a notice
each day; after it the item is suspended (a profile stops carrying calls, a number goes to
quarantine). Nothing is deleted, and paying resumes the item.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.charges.items import charge_item_for
from apps.billing.ledger.services import InsufficientFunds, Leg, company_account, ledger_post, platform_account
from apps.billing.models import Charge, LedgerAccount, LedgerTransaction
from apps.billing.money import AMOUNT_QUANTUM, format_money
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor

logger = logging.getLogger(__name__)

GRACE_DAYS = 7
REVENUE = {
    Charge.Kind.CHANNELS: LedgerAccount.Kind.REVENUE_CHANNELS,
    Charge.Kind.NUMBER: LedgerAccount.Kind.REVENUE_NUMBERS,
    Charge.Kind.US_BUNDLE: LedgerAccount.Kind.REVENUE_BUNDLES,
}
OPEN = (Charge.Status.UNPAID, Charge.Status.SUSPENDED)


def _try_to_pay(*, actor: Actor, charge: Charge, now: datetime) -> bool:
    """Debit the company balance for the charge, once (ledger key charge:<key>)."""
    txn: LedgerTransaction | None = None
    if charge.amount > 0:
        try:
            with transaction.atomic():
                txn, _ = ledger_post(
                    actor=actor,
                    key=f"charge:{charge.idempotency_key}",
                    kind=LedgerTransaction.Kind.CHARGE,
                    company=charge.company,
                    currency=charge.currency,
                    description=charge.description,
                    legs=[
                        Leg(company_account(charge.company), -charge.amount),
                        Leg(platform_account(REVENUE[Charge.Kind(charge.kind)], charge.currency), charge.amount),
                    ],
                )
        except InsufficientFunds:
            Charge.objects.filter(pk=charge.pk).update(last_attempt_at=now)
            return False
    Charge.objects.filter(pk=charge.pk).update(
        status=Charge.Status.PAID, paid_at=now, ledger_transaction=txn, last_attempt_at=now
    )
    charge.status, charge.paid_at, charge.ledger_transaction = Charge.Status.PAID, now, txn
    return True


def charge_record(
    *,
    actor: Actor,
    company: Company,
    kind: str,
    description: str,
    quantity: int,
    unit_price: Decimal,
    amount: Decimal,
    period_start: datetime,
    period_end: datetime,
    item: str,
    idempotency_key: str,
) -> Charge:
    """Charge the company balance, once per idempotency key (a retry returns the first charge).
    What the balance cannot cover stays unpaid, with a grace period."""
    existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    now = timezone.now()
    amount = amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP)
    with transaction.atomic():
        try:
            with transaction.atomic():
                charge = Charge.objects.create(
                    company=company,
                    kind=kind,
                    description=description[:200],
                    quantity=quantity,
                    unit_price=unit_price,
                    amount=amount,
                    currency=company.currency,
                    period_start=period_start,
                    period_end=period_end,
                    item=item,
                    idempotency_key=idempotency_key,
                    status=Charge.Status.UNPAID,
                    grace_until=now + timedelta(days=GRACE_DAYS),
                )
        except IntegrityError:
            return Charge.objects.get(idempotency_key=idempotency_key)
        paid = _try_to_pay(actor=actor, charge=charge, now=now)
        audit_record(
            actor=actor,
            action="charge.paid" if paid else "charge.unpaid",
            company=company,
            target=charge,
            changes={"amount": {"before": None, "after": format_money(amount, company.currency)}},
        )
        if not paid:
            notice_create(
                company=company,
                kind="charge_unpaid",
                subject=f"{description}: {format_money(amount, company.currency)} could not be paid",
                level=Notice.Level.ERROR,
                message=(
                    f"{description}: {format_money(amount, company.currency)} could not be paid from your balance. "
                    f"Buy credit before {charge.grace_until:%d %b %Y} or it will be suspended."
                ),
            )
        # Paid or not, the balance may now be below the auto-recharge threshold.
        _ask_for_auto_recharge(company, trigger="threshold" if paid else "unpaid_charge")
    return charge


def _ask_for_auto_recharge(company: Company, *, trigger: str) -> None:
    """After commit, let the company auto-recharge look at the balance (cheap when it is off)."""
    # Lazy: auto-recharge builds on purchases, which settle charges when credit arrives.
    from apps.billing.recharge.company import company_recharge_requested

    company_id = company.pk
    transaction.on_commit(lambda: company_recharge_requested(company_id=company_id, trigger=trigger), robust=True)


# --- Unpaid renewals: retry, suspend, resume --------------------------------------


def _suspend(*, actor: Actor, charge: Charge, now: datetime) -> None:
    found = charge_item_for(charge)
    if found is not None:
        handler, item = found
        handler.suspend_unpaid(actor=actor, item=item, charge=charge, now=now)


def _resumable(charge: Charge) -> bool:
    found = charge_item_for(charge)
    return True if found is None else found[0].resumable(found[1])


def _resume(*, actor: Actor, charge: Charge) -> None:
    found = charge_item_for(charge)
    if found is not None:
        handler, item = found
        handler.resume_paid(actor=actor, item=item, charge=charge)


def _settle_one(*, pk: int, now: datetime) -> str | None:
    actor = Actor.system()
    with transaction.atomic():
        charge = (
            Charge.objects.select_for_update(skip_locked=True)
            .select_related("company")
            .filter(pk=pk, status__in=OPEN)
            .first()
        )
        if charge is None:
            return None  # paid or being handled by another run
        if charge.status == Charge.Status.SUSPENDED and not _resumable(charge):
            return None
        first_try_today = charge.last_attempt_at is None or charge.last_attempt_at.date() != now.date()
        was = charge.status
        owed = format_money(charge.amount, charge.currency)
        if _try_to_pay(actor=actor, charge=charge, now=now):
            audit_record(actor=actor, action="charge.paid", company=charge.company, target=charge)
            if was == Charge.Status.SUSPENDED:
                _resume(actor=actor, charge=charge)
            notice_create(
                company=charge.company,
                kind="charge_paid",
                subject=f"{charge.description}: {owed} was paid",
                level=Notice.Level.INFO,
                message=f"{charge.description}: {owed} was paid from your balance.",
            )
            return "paid"
        if was == Charge.Status.UNPAID and charge.grace_until and now >= charge.grace_until:
            Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.SUSPENDED)
            charge.status = Charge.Status.SUSPENDED
            _suspend(actor=actor, charge=charge, now=now)
            audit_record(actor=actor, action="charge.item_suspended", company=charge.company, target=charge)
            notice_create(
                company=charge.company,
                kind="charge_suspended",
                subject=f"{charge.description} is suspended: {owed} unpaid",
                level=Notice.Level.ERROR,
                message=f"{charge.description} is suspended: {owed} is still unpaid. Buy credit and it resumes.",
            )
            return "suspended"
        if was == Charge.Status.UNPAID and first_try_today:
            notice_create(
                company=charge.company,
                kind="charge_unpaid",
                subject=f"{charge.description}: {owed} is still unpaid",
                level=Notice.Level.ERROR,
                message=(
                    f"{charge.description}: {owed} is unpaid. Buy credit before "
                    f"{charge.grace_until:%d %b %Y} or it will be suspended."
                ),
            )
        return "unpaid"


def charges_settle(*, now: datetime | None = None, limit: int = 1000, company_id: int | None = None) -> dict[str, int]:
    """Retry unpaid charges, suspend items whose grace period is over, resume paid ones.
    Bounded per run; each charge is its own transaction. `company_id`: that company's only
    (run when credit arrives, so an auto-recharge or a purchase pays what is owed at once)."""
    now = now or timezone.now()
    counts = {"paid": 0, "unpaid": 0, "suspended": 0}
    open_charges = Charge.objects.filter(status__in=OPEN)
    if company_id is not None:
        open_charges = open_charges.filter(company_id=company_id)
    ids = list(open_charges.order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
    for pk in ids:
        outcome = _settle_one(pk=pk, now=now)
        if outcome is not None:
            counts[outcome] += 1
    return counts


def charges_cancel_for_item(*, actor: Actor, item: str) -> int:
    """The item ended while unpaid (a suspended number's quarantine ran out): its open
    charges are cancelled, never collected."""
    cancelled = 0
    for charge in Charge.objects.select_for_update().filter(item=item, status__in=OPEN):
        Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.CANCELLED)
        audit_record(actor=actor, action="charge.cancelled", company=charge.company, target=charge)
        cancelled += 1
    return cancelled


def charges_settle_after_credit(company: Company) -> None:
    """Credit arrived: after commit, pay what the company owes from it."""
    company_id = company.pk
    transaction.on_commit(lambda: charges_settle(company_id=company_id), robust=True)
