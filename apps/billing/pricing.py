"""Prices and periods: pure helpers the products use to price what they sell (no ledger, no
charges), so a product depends on pricing rather than on the charges module."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from apps.billing.models import Price
from apps.billing.money import AMOUNT_QUANTUM
from apps.core.exceptions import ApplicationError


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
    return (amount * fraction).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ProratedPrice:
    """`count` of a monthly item (channels, US minute bundles) bought at `at`, charged from then
    to the end of the renewal period it falls in: what the charge records and its quote shows."""

    kind: str
    count: int
    unit_price: Decimal
    amount: Decimal
    period_start: datetime
    period_end: datetime

    def description(self, *, counted: str, name: str, at: datetime) -> str:
        """`counted` is the item with its count ("3 channels"); `name` the profile's."""
        return f"{counted} on {name}, {at:%d %b} to {self.period_end:%d %b %Y} (prorated)"


def prorated_price(*, kind: str, currency: str, renewal_day: int, count: int, at: datetime) -> ProratedPrice:
    """What `count` of the monthly item `kind` bought at `at` costs, prorated to the period's end."""
    unit_price = price_for(kind=kind, currency=currency)
    period_start, period_end = monthly_period(renewal_day=renewal_day, at=at)
    amount = prorate(
        amount=unit_price * count, start=at, end=period_end, period_start=period_start, period_end=period_end
    )
    return ProratedPrice(
        kind=kind,
        count=count,
        unit_price=unit_price,
        amount=amount,
        period_start=period_start,
        period_end=period_end,
    )
