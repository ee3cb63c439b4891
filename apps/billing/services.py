"""What companies are charged for, paid from the company balance through the ledger.

Every charge (a new profile's channels, more channels, a number, each renewal) is paid at
once when the balance covers it. One that cannot be paid asks for the company's
auto-recharge and gives the item a grace period of GRACE_DAYS, with a retry and a notice
each day; after it the item is suspended (a profile stops carrying calls, a number goes to
quarantine). Nothing is deleted, and paying resumes the item.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.ledger import InsufficientFunds, Leg, company_account, ledger_post, platform_account
from apps.billing.models import Charge, LedgerAccount, LedgerTransaction, Price
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

CENT = Decimal("0.0001")
GRACE_DAYS = 7
REVENUE = {
    Charge.Kind.CHANNELS: LedgerAccount.Kind.REVENUE_CHANNELS,
    Charge.Kind.NUMBER: LedgerAccount.Kind.REVENUE_NUMBERS,
    Charge.Kind.US_BUNDLE: LedgerAccount.Kind.REVENUE_BUNDLES,
}
OPEN = (Charge.Status.UNPAID, Charge.Status.SUSPENDED)


def price_for(*, kind: str, currency: str) -> Decimal:
    price = Price.objects.filter(kind=kind, currency=currency).first()
    if price is None:
        raise ApplicationError(f"No {kind.replace('_', ' ')} price is set for {currency}. Contact support.")
    return price.amount


def _add_month(moment: datetime, day: int) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=min(day, calendar.monthrange(year, month)[1]))


def monthly_period(*, renewal_day: int, at: datetime) -> tuple[datetime, datetime]:
    """The monthly period containing `at` that starts on `renewal_day` at midnight UTC."""
    start = at.replace(day=renewal_day, hour=0, minute=0, second=0, microsecond=0)
    if start > at:
        year, month = (at.year - 1, 12) if at.month == 1 else (at.year, at.month - 1)
        start = start.replace(year=year, month=month)
    return start, _add_month(start, renewal_day)


def prorate(
    *, amount: Decimal, start: datetime, end: datetime, period_start: datetime, period_end: datetime
) -> Decimal:
    """`amount` for the part [start, end) of the period, rounded half-up to 4 places once."""
    fraction = Decimal((end - start).total_seconds()) / Decimal((period_end - period_start).total_seconds())
    return (amount * fraction).quantize(CENT, rounding=ROUND_HALF_UP)


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


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
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
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
            changes={"amount": {"before": None, "after": _money(amount, company.currency)}},
        )
        if not paid:
            notice_create(
                company=company,
                kind="charge_unpaid",
                level=Notice.Level.ERROR,
                message=(
                    f"{description}: {_money(amount, company.currency)} could not be paid from your balance. "
                    f"Buy credit before {charge.grace_until:%d %b %Y} or it will be suspended."
                ),
            )
        # Paid or not, the balance may now be below the auto-recharge threshold.
        _ask_for_auto_recharge(company, trigger="threshold" if paid else "unpaid_charge")
    return charge


def _ask_for_auto_recharge(company: Company, *, trigger: str) -> None:
    """After commit, let the company auto-recharge look at the balance (cheap when it is off)."""
    from apps.billing import recharge

    company_id = company.pk
    transaction.on_commit(
        lambda: recharge.company_recharge_requested(company_id=company_id, trigger=trigger), robust=True
    )


# --- Unpaid renewals: retry, suspend, resume --------------------------------------


def _item(charge: Charge) -> object | None:
    label, _, public_id = charge.item.partition(":")
    if label == "sip_profiles.sipprofile":
        from apps.sip_profiles.models import SipProfile

        return SipProfile.objects.select_for_update().filter(public_id=public_id).first()
    if label == "numbers.numbersubscription":
        from apps.numbers.models import NumberSubscription

        return (
            NumberSubscription.objects.select_for_update(of=("self",))
            .select_related("number")
            .filter(public_id=public_id)
            .first()
        )
    if label == "bundles.bundleperiod":
        # Bundle charges name the period their minutes belong to, by its (internal) id.
        from apps.bundles.models import BundlePeriod

        return (
            BundlePeriod.objects.select_for_update(of=("self",))
            .select_related("sip_profile", "company")
            .filter(pk=int(public_id))
            .first()
        )
    return None


def _suspend(*, actor: Actor, charge: Charge, now: datetime) -> None:
    from apps.bundles.models import BundlePeriod
    from apps.numbers.models import NumberSubscription, OnlineNumber
    from apps.sip_profiles.models import SipProfile

    item = _item(charge)
    if isinstance(item, BundlePeriod):
        from apps.bundles.services import bundle_period_suspend

        bundle_period_suspend(actor=actor, period=item)
        return
    if isinstance(item, SipProfile) and item.deleted_at is None and not item.suspended_for_billing:
        before = item.status
        item.status = SipProfile.Status.SUSPENDED
        item.suspended_for_billing = True
        item.provisioning_state = SipProfile.Provisioning.PENDING
        item.save(update_fields=["status", "suspended_for_billing", "provisioning_state", "updated_at"])
        audit_record(
            actor=actor,
            action="sip_profile.suspended_unpaid",
            company=charge.company,
            target=item,
            changes={"status": {"before": before, "after": item.status}},
        )
    elif isinstance(item, NumberSubscription) and item.status == NumberSubscription.Status.ACTIVE:
        from apps.callerid.services import caller_id_remove_everywhere
        from apps.numbers.models import QUARANTINE_DAYS

        stock = OnlineNumber.objects.select_for_update().get(pk=item.number_id)
        item.status = NumberSubscription.Status.SUSPENDED
        item.save(update_fields=["status", "updated_at"])
        stock.status = OnlineNumber.Status.QUARANTINE
        stock.quarantine_until = now + timedelta(days=QUARANTINE_DAYS)
        stock.save(update_fields=["status", "quarantine_until", "updated_at"])
        audit_record(
            actor=actor,
            action="number.suspended_unpaid",
            company=charge.company,
            target=item,
            changes={"status": {"before": NumberSubscription.Status.ACTIVE, "after": item.status}},
        )
        caller_id_remove_everywhere(
            actor=actor, company=charge.company, subscription=item, reason="its renewal was not paid"
        )


def _resumable(charge: Charge) -> bool:
    from apps.numbers.models import NumberSubscription, OnlineNumber

    item = _item(charge)
    if isinstance(item, NumberSubscription) and item.status == NumberSubscription.Status.SUSPENDED:
        # Its quarantine must still hold the number for this company.
        return item.number.status == OnlineNumber.Status.QUARANTINE
    return True


def _resume(*, actor: Actor, charge: Charge) -> None:
    from apps.bundles.models import BundlePeriod
    from apps.numbers.models import NumberSubscription, OnlineNumber
    from apps.sip_profiles.models import SipProfile

    item = _item(charge)
    if isinstance(item, BundlePeriod):
        from apps.bundles.services import bundle_period_resume

        bundle_period_resume(actor=actor, period=item, paid=charge)
        return
    if isinstance(item, SipProfile) and item.suspended_for_billing:
        still_owed = Charge.objects.filter(item=charge.item, status=Charge.Status.SUSPENDED).exclude(pk=charge.pk)
        if still_owed.exists():
            return
        item.status = SipProfile.Status.ACTIVE
        item.suspended_for_billing = False
        item.provisioning_state = SipProfile.Provisioning.PENDING
        item.save(update_fields=["status", "suspended_for_billing", "provisioning_state", "updated_at"])
        audit_record(
            actor=actor,
            action="sip_profile.resumed",
            company=charge.company,
            target=item,
            changes={"status": {"before": SipProfile.Status.SUSPENDED, "after": item.status}},
        )
    elif isinstance(item, NumberSubscription) and item.status == NumberSubscription.Status.SUSPENDED:
        stock = OnlineNumber.objects.select_for_update().get(pk=item.number_id)
        item.status = NumberSubscription.Status.ACTIVE
        item.save(update_fields=["status", "updated_at"])
        stock.status = OnlineNumber.Status.ACTIVE
        stock.quarantine_until = None
        stock.save(update_fields=["status", "quarantine_until", "updated_at"])
        audit_record(
            actor=actor,
            action="number.resumed",
            company=charge.company,
            target=item,
            changes={"status": {"before": NumberSubscription.Status.SUSPENDED, "after": item.status}},
        )


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
        if _try_to_pay(actor=actor, charge=charge, now=now):
            audit_record(actor=actor, action="charge.paid", company=charge.company, target=charge)
            if was == Charge.Status.SUSPENDED:
                _resume(actor=actor, charge=charge)
            notice_create(
                company=charge.company,
                kind="charge_paid",
                level=Notice.Level.INFO,
                message=f"{charge.description}: {_money(charge.amount, charge.currency)} was paid from your balance.",
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
                level=Notice.Level.ERROR,
                message=(
                    f"{charge.description} is suspended: {_money(charge.amount, charge.currency)} is still unpaid. "
                    "Buy credit and it resumes."
                ),
            )
            return "suspended"
        if was == Charge.Status.UNPAID and first_try_today:
            notice_create(
                company=charge.company,
                kind="charge_unpaid",
                level=Notice.Level.ERROR,
                message=(
                    f"{charge.description}: {_money(charge.amount, charge.currency)} is unpaid. Buy credit before "
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
