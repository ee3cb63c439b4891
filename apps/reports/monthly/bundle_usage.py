"""The Bundle usage report: per SIP profile, its US minute bundle minutes through the month
(minutes left at the end of each UTC day of its bundle period, and the minutes used that day by
calls to US landlines and to US mobiles, which draw on one pool, as rating has them), the day
the minutes run out at the period's pace so far (or that they will not before the period
renews), and what LAST month's US calls would have cost with 0, 1, … bundles against paying for
every minute at the rate, the cheapest marked.

Read from the daily call figures (apps.cdrs.models.DailyCalls) and the bundle periods, never
from the CDRs. Queries: 5 whatever the month holds (profiles, periods, figures, the bundle
price, the deck's US rates)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Subquery, Sum
from django.utils import timezone

from apps.billing.models import Price
from apps.bundles.models import MINUTES_PER_BUNDLE, BundlePeriod
from apps.cdrs.models import Cdr, DailyCalls
from apps.companies.models import Company
from apps.rating.models import DestinationClass, Rate, RateDeck
from apps.reports.monthly.selectors import Month
from apps.sip_profiles.models import SipProfile

POOL_CLASSES = (DestinationClass.LANDLINE.value, DestinationClass.MOBILE.value)
BUNDLE_COUNTRY = "US"
SIXTY = Decimal(60)
PLACES = Decimal("0.0001")


@dataclass
class BurnDay:
    day: date
    minutes_left: int | None  # at the end of the day; None: no bundle period that day, or not yet
    landline: int = 0  # bundle minutes used that day by calls to US landlines
    mobile: int = 0  # … to US mobiles


@dataclass(frozen=True)
class WhatIf:
    bundles: int
    bundle_cost: Decimal  # bundles × the monthly price
    minutes_over: Decimal  # the minutes past bundles × 5,000, paid at the rate
    over_cost: Decimal
    total: Decimal
    cheapest: bool
    needs_channels: bool  # more bundles than the profile's channels (a bundle needs a channel)
    current: bool  # as many bundles as the profile holds now


@dataclass
class ProfileBundles:
    profile: SipProfile
    days: list[BurnDay]
    period: BundlePeriod | None = None  # the period the forecast is about
    minutes_included: int = 0
    minutes_used: int = 0  # in that period, up to the day the forecast is made
    run_out: date | None = None  # when the minutes ran or will run out at the pace so far
    ran_out: bool = False  # they have run out already
    last_month_minutes: Decimal = Decimal(0)  # US landline and mobile minutes last month
    rate: Decimal = Decimal(0)  # what a minute of them cost at the rates paid (blended)
    what_if: list[WhatIf] = field(default_factory=list)

    @property
    def minutes_left(self) -> int:
        return max(self.minutes_included - self.minutes_used, 0)

    @property
    def cheapest(self) -> WhatIf | None:
        return next((w for w in self.what_if if w.cheapest), None)

    @property
    def forecast(self) -> str:
        if self.period is None:
            return "No bundles"
        if self.ran_out and self.run_out is not None:
            return f"Ran out on {self.run_out:%-d %b}"
        if self.run_out is None:
            return "Will not run out"
        return f"Runs out about {self.run_out:%-d %b}"


@dataclass
class BundleReport:
    month: Month
    currency: str
    bundle_price: Decimal | None
    profiles: list[ProfileBundles] = field(default_factory=list)

    @property
    def days(self) -> list[BurnDay]:
        """Every profile's days added up (minutes left: of the profiles with a period that day)."""
        total = []
        for n, day in enumerate(self.month.days):
            lefts = [left for p in self.profiles if (left := p.days[n].minutes_left) is not None]
            total.append(
                BurnDay(
                    day,
                    sum(lefts) if lefts else None,
                    sum(p.days[n].landline for p in self.profiles),
                    sum(p.days[n].mobile for p in self.profiles),
                )
            )
        return total


def _money(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


def _deck_rates(company: Company, at: Any) -> dict[str, Decimal]:
    """The deck's general US price per minute of each pool class (its shortest prefix)."""
    deck = (
        RateDeck.objects.filter(currency=company.currency, status=RateDeck.Status.ACTIVE, effective_from__lte=at)
        .order_by("-effective_from")
        .values("pk")[:1]
    )
    best: dict[str, tuple[int, Decimal]] = {}
    rows = Rate.objects.filter(
        deck=Subquery(deck), country=BUNDLE_COUNTRY, destination_class__in=POOL_CLASSES
    ).values_list("destination_class", "prefix", "price_per_minute")
    for kind, prefix, price in rows:
        if kind not in best or len(prefix) < best[kind][0]:
            best[kind] = (len(prefix), price)
    return {kind: price for kind, (_length, price) in best.items()}


def what_if(
    *, minutes: Decimal, rate: Decimal, price: Decimal, up_to: int, channels: int, current: int
) -> list[WhatIf]:
    """The cost of `minutes` with 0 … `up_to` bundles: bundles × price, plus the minutes past
    bundles × 5,000 at `rate`; the cheapest (the fewest bundles among equals) marked."""
    rows = []
    for n in range(up_to + 1):
        over = max(minutes - n * MINUTES_PER_BUNDLE, Decimal(0))
        over_cost = _money(over * rate)
        bundle_cost = _money(price * n)
        rows.append((n, bundle_cost, over, over_cost, bundle_cost + over_cost))
    best = min(rows, key=lambda row: (row[4], row[0]))[0]
    return [
        WhatIf(n, bundle_cost, over, over_cost, total, n == best, n > channels, n == current)
        for n, bundle_cost, over, over_cost, total in rows
    ]


def bundle_report(*, company: Company, month: Month, profile: SipProfile | None = None) -> BundleReport:
    """Every live profile's (or one's) bundle burn-down through the month, its run-out
    forecast and last month's what-if. Queries: 5."""
    profiles = list(SipProfile.objects.for_company(company).live().order_by("name", "id"))
    if profile is not None:
        profiles = [p for p in profiles if p.pk == profile.pk]
    ids = [p.pk for p in profiles]
    periods: dict[int, list[BundlePeriod]] = defaultdict(list)
    for period in BundlePeriod.objects.for_company(company).filter(
        sip_profile_id__in=ids, period_start__lt=month.end, period_end__gt=month.start
    ):
        periods[period.sip_profile_id].append(period)
    last = month.previous
    earliest = min([last.first, *(p.period_start.date() for ps in periods.values() for p in ps)])
    figures = (
        DailyCalls.objects.for_company(company)
        .filter(
            sip_profile_id__in=ids,
            day__gte=earliest,
            day__lt=month.after,
            direction=Cdr.Direction.OUTBOUND,
            country=BUNDLE_COUNTRY,
            destination_class__in=POOL_CLASSES,
            refusal_reason="",
        )
        .values("sip_profile_id", "day", "destination_class")
        .annotate(
            minutes=Sum("bundle_minutes"),
            covered=Sum("bundle_seconds"),
            seconds=Sum("billable_seconds"),
            paid=Sum("cost"),
        )
        .order_by()
    )
    used: dict[tuple[int, date, str], int] = defaultdict(int)
    # Last month per profile and class: [whole bundle minutes, seconds paid at the rate, cost].
    previous: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    for row in figures:
        key = (row["sip_profile_id"], row["day"], row["destination_class"])
        used[key] += row["minutes"] or 0
        if last.first <= row["day"] < last.after:
            sums = previous[(row["sip_profile_id"], row["destination_class"])]
            sums[0] += row["minutes"] or 0
            sums[1] += (row["seconds"] or 0) - (row["covered"] or 0)
            sums[2] += row["paid"] or Decimal(0)
    price = (
        Price.objects.filter(kind=Price.Kind.US_BUNDLE_MONTHLY, currency=company.currency)
        .values_list("amount", flat=True)
        .first()
    )
    deck_rates = _deck_rates(company, last.end)
    # A minute a bundle paid for is valued at what the profile paid a minute of that class at
    # the rate, else what the company paid, else the deck's general US price.
    company_paid: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for (_pk, kind), (_minutes, seconds, cost) in previous.items():
        company_paid[kind][0] += seconds
        company_paid[kind][1] += cost

    def rate_of(pk: int, kind: str) -> Decimal:
        _minutes, seconds, cost = previous.get((pk, kind), (0, 0, Decimal(0)))
        if seconds > 0:
            return Decimal(cost) * SIXTY / seconds
        seconds, cost = company_paid.get(kind, (0, Decimal(0)))
        if seconds > 0:
            return Decimal(cost) * SIXTY / seconds
        return deck_rates.get(kind, deck_rates.get(DestinationClass.LANDLINE.value, Decimal(0)))

    today = timezone.now().date()
    as_of = min(today, month.after - timedelta(days=1))
    span = [earliest + timedelta(days=n) for n in range((month.after - earliest).days)]
    report = BundleReport(month, company.currency, price)
    for p in profiles:
        line = ProfileBundles(p, [])
        # The bundle minutes used up to the end of each day since `earliest`: a period's use up
        # to a day is the difference of two of these.
        running, total = {}, 0
        for day in span:
            total += sum(used.get((p.pk, day, kind), 0) for kind in POOL_CLASSES)
            running[day] = total

        def spent(period: BundlePeriod, day: date, running: dict[date, int] = running) -> int:
            before = period.period_start.date() - timedelta(days=1)
            return running[day] - running.get(before, 0)

        mine = sorted(periods.get(p.pk, []), key=lambda x: x.period_start)
        for day in month.days:
            period = next((x for x in mine if x.period_start.date() <= day < x.period_end.date()), None)
            left = None
            if period is not None and day <= today:
                left = 0 if period.suspended else max(period.minutes_included - spent(period, day), 0)
            line.days.append(
                BurnDay(
                    day,
                    left,
                    used.get((p.pk, day, DestinationClass.LANDLINE.value), 0),
                    used.get((p.pk, day, DestinationClass.MOBILE.value), 0),
                )
            )
        _forecast(line, mine, used, as_of)
        minutes, value = Decimal(0), Decimal(0)
        for kind in POOL_CLASSES:
            whole, seconds, cost = previous.get((p.pk, kind), (0, 0, Decimal(0)))
            kind_minutes = Decimal(whole) + Decimal(seconds) / SIXTY
            minutes += kind_minutes
            # The minutes paid at the rate cost what they cost; the bundle's at the rate.
            value += Decimal(cost) + Decimal(whole) * rate_of(p.pk, kind)
        line.last_month_minutes = minutes
        line.rate = value / minutes if minutes else Decimal(0)
        if price is not None:
            up_to = max(p.us_minute_bundles, math.ceil(minutes / MINUTES_PER_BUNDLE)) + 1
            line.what_if = what_if(
                minutes=minutes,
                rate=line.rate,
                price=price,
                up_to=up_to,
                channels=p.channels,
                current=p.us_minute_bundles,
            )
        report.profiles.append(line)
    return report


def _forecast(
    line: ProfileBundles, periods: list[BundlePeriod], used: dict[tuple[int, date, str], int], as_of: date
) -> None:
    """The period in force on `as_of` (today, or the month's last day): the minutes used in it
    so far, and when they run out at that pace (None: not before it renews)."""
    period = next((x for x in periods if x.period_start.date() <= as_of < x.period_end.date()), None)
    if period is None:
        return
    line.period, line.minutes_included = period, period.minutes_included
    start, end = period.period_start.date(), period.period_end.date()
    elapsed = (as_of - start).days + 1
    spent = 0
    for n in range(elapsed):
        day = start + timedelta(days=n)
        spent += sum(used.get((line.profile.pk, day, kind), 0) for kind in POOL_CLASSES)
        if spent >= period.minutes_included and not line.ran_out:
            line.ran_out, line.run_out = True, day
    line.minutes_used = min(spent, period.minutes_included)
    if line.ran_out or period.minutes_included == 0:
        line.ran_out = True
        line.run_out = line.run_out or start
        return
    if spent == 0:
        return
    days_to_go = math.ceil(Decimal(period.minutes_included - spent) * elapsed / spent)
    run_out = as_of + timedelta(days=days_to_go)
    line.run_out = run_out if run_out < end else None
