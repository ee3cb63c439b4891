"""Recording what a company buys. The credit release makes charge_record debit the
company balance through the ledger; callers do not change when it does."""

from __future__ import annotations

import calendar
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.billing.models import Charge, Price
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

CENT = Decimal("0.0001")


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
    """Record one purchase or renewal, once per idempotency key (a retry returns the first)."""
    existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            charge = Charge.objects.create(
                company=company,
                kind=kind,
                description=description[:200],
                quantity=quantity,
                unit_price=unit_price,
                amount=amount.quantize(CENT, rounding=ROUND_HALF_UP),
                currency=company.currency,
                period_start=period_start,
                period_end=period_end,
                item=item,
                idempotency_key=idempotency_key,
            )
            audit_record(
                actor=actor,
                action="charge.recorded",
                company=company,
                target=charge,
                changes={"amount": {"before": None, "after": f"{charge.amount} {charge.currency}"}},
            )
    except IntegrityError:
        return Charge.objects.get(idempotency_key=idempotency_key)
    return charge
