"""Reads about US minute bundles: a profile's current period, minutes left, usage per profile."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from apps.billing.models import Price
from apps.billing.money import AMOUNT_QUANTUM
from apps.billing.pricing import monthly_period, prorate
from apps.bundles.models import MINUTES_PER_BUNDLE, BundlePeriod
from apps.bundles.services import prorated_minutes
from apps.sip_profiles.models import SipProfile


def bundle_period_current(*, profile: SipProfile, at: datetime | None = None) -> BundlePeriod | None:
    """The period whose minutes calls starting at `at` use (the rating engine's rule)."""
    at = at or timezone.now()
    return BundlePeriod.objects.filter(sip_profile=profile, period_start__lte=at, period_end__gt=at).first()


def bundle_minutes_left(*, profile: SipProfile, at: datetime | None = None) -> int:
    """Minutes calls to US landlines and mobiles may still use now (0 while suspended)."""
    period = bundle_period_current(profile=profile, at=at)
    return period.minutes_left if period is not None else 0


@dataclass(frozen=True)
class BundleSummary:
    """What the profile page and the API show about a profile's bundles."""

    bundles: int
    max_bundles: int
    minutes_per_bundle: int
    currency: str
    monthly_price: Decimal | None
    period: BundlePeriod | None
    # The period a purchase now falls in, and what one bundle bought now gives and costs.
    period_start: datetime
    period_end: datetime
    minutes_if_bought_now: int
    price_if_bought_now: Decimal | None

    @property
    def minutes_included(self) -> int:
        return self.period.minutes_included if self.period else 0

    @property
    def minutes_used(self) -> int:
        return self.period.minutes_used if self.period else 0

    @property
    def minutes_left(self) -> int:
        return self.period.minutes_left if self.period else 0

    @property
    def percent_used(self) -> int:
        return self.period.percent_used if self.period else 0

    @property
    def suspended(self) -> bool:
        return bool(self.period and self.period.suspended)

    @property
    def can_buy(self) -> int:
        return max(0, self.max_bundles - self.bundles)


def bundle_summary(*, profile: SipProfile, at: datetime | None = None) -> BundleSummary:
    at = at or timezone.now()
    currency = profile.company.currency
    price = Price.objects.filter(kind=Price.Kind.US_BUNDLE_MONTHLY, currency=currency).first()
    period = bundle_period_current(profile=profile, at=at)
    start, end = monthly_period(renewal_day=profile.renewal_day, at=at)
    monthly = price.amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP) if price else None
    return BundleSummary(
        bundles=profile.us_minute_bundles,
        max_bundles=profile.channels,
        minutes_per_bundle=MINUTES_PER_BUNDLE,
        currency=currency,
        monthly_price=monthly,
        period=period,
        period_start=period.period_start if period else start,
        period_end=period.period_end if period else end,
        minutes_if_bought_now=prorated_minutes(at=at, period_start=start, period_end=end),
        price_if_bought_now=(
            prorate(amount=monthly, start=at, end=end, period_start=start, period_end=end)
            if monthly is not None
            else None
        ),
    )


def bundle_minutes_left_by_profile(*, profile_ids: Collection[int], at: datetime | None = None) -> dict[int, int]:
    """Minutes left now per profile id, for profiles with a current bundle period (the others
    have none to use). Queries: 1, whatever the number of profiles."""
    at = at or timezone.now()
    periods = BundlePeriod.objects.filter(sip_profile_id__in=profile_ids, period_start__lte=at, period_end__gt=at)
    return {period.sip_profile_id: period.minutes_left for period in periods}
