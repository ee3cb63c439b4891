"""The monthly reports (Summary, Usage, Purchases, Allocations): reads only, each a fixed
number of queries whatever the month holds. Calls are read from the call figures the rating
engine keeps, never from the CDRs: per profile and destination from the month's roll-up
(apps.cdrs.models.MonthlyCalls), per day from the per-profile daily roll-up (ProfileDayCalls),
so a month of a million calls is read as some thousands of rows; money that is not calls from
the ledger. Months and days are UTC, as the figures' days are."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django_countries import countries

from apps.billing.models import CreditPurchase, LedgerAccount, LedgerEntry, LedgerTransaction
from apps.cdrs.models import Cdr, MonthlyCalls, ProfileDayCalls
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.rating.models import DestinationClass
from apps.sip_profiles.models import SipProfile

ZERO = Decimal("0.0000")
MONTH_FORMAT = re.compile(r"^(\d{4})-(\d{2})$")
Txn, Account = LedgerTransaction.Kind, LedgerAccount.Kind
CLASS_NAMES = dict(DestinationClass.choices)
DIRECTION_NAMES = dict(Cdr.Direction.choices)


@dataclass(frozen=True)
class Month:
    """One calendar month (UTC)."""

    first: date

    @classmethod
    def parse(cls, text: str | None, *, today: date) -> Month:
        """`text` as YYYY-MM (none: this month). Months after this one are refused."""
        current = cls(today.replace(day=1))
        if not text:
            return current
        found = MONTH_FORMAT.match(text.strip())
        if not found or not 1 <= int(found[2]) <= 12 or int(found[1]) < 2000:
            raise ApplicationError("Give the month as YYYY-MM, e.g. 2026-03.", field="month")
        month = cls(date(int(found[1]), int(found[2]), 1))
        if month.first > current.first:
            raise ApplicationError("That month has not started yet.", field="month")
        return month

    @property
    def key(self) -> str:
        return self.first.strftime("%Y-%m")

    @property
    def label(self) -> str:
        return self.first.strftime("%B %Y")

    @property
    def after(self) -> date:
        """The first day of the next month."""
        return (self.first + timedelta(days=32)).replace(day=1)

    @property
    def previous(self) -> Month:
        return Month((self.first - timedelta(days=1)).replace(day=1))

    @property
    def next(self) -> Month:
        return Month(self.after)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.after - self.first).days)]

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.after.year, self.after.month, 1, tzinfo=UTC)


def _calls(company: Company, month: Month, profile: SipProfile | None) -> QuerySet[MonthlyCalls]:
    """The month's figures per profile, destination and refusal reason."""
    figures = MonthlyCalls.objects.for_company(company).filter(month=month.first)
    return figures.filter(sip_profile_id=profile.pk) if profile is not None else figures


def _days(company: Company, month: Month, profile: SipProfile | None) -> QuerySet[ProfileDayCalls]:
    """The month's figures per day and profile."""
    figures = ProfileDayCalls.objects.for_company(company).filter(day__gte=month.first, day__lt=month.after)
    return figures.filter(sip_profile_id=profile.pk) if profile is not None else figures


USAGE_FIELDS = (
    "calls",
    "answered",
    "billable_seconds",
    "bundle_minutes",
    "cost",
    "unrated",
    "refused",
    "refused_at_channel_limit",
)


def _sums() -> dict[str, Any]:
    """The usage sums, named sum_<field> (an annotation may not take a column's name)."""
    return {
        "sum_calls": Sum("calls"),
        "sum_answered": Sum("answered"),
        "sum_billable_seconds": Sum("billable_seconds"),
        "sum_bundle_minutes": Sum("bundle_minutes"),
        "sum_cost": Sum("cost"),
        "sum_unrated": Sum("unrated"),
        "sum_refused": Sum("calls", filter=~Q(refusal_reason="")),
        "sum_refused_at_channel_limit": Sum("calls", filter=Q(refusal_reason=Cdr.RefusalReason.CHANNEL_LIMIT)),
    }


def _day_sums() -> dict[str, Any]:
    """The usage sums of the per-day roll-up, which counts the refused calls itself."""
    sums = _sums()
    sums["sum_refused"] = Sum("refused")
    sums["sum_refused_at_channel_limit"] = Sum("refused_at_channel_limit")
    return sums


@dataclass
class Usage:
    """Calls, minutes, cost and bundle minutes of some calls; `label` names what they are."""

    label: str = ""
    key: str = ""
    calls: int = 0
    answered: int = 0
    billable_seconds: int = 0
    bundle_minutes: int = 0
    cost: Decimal = ZERO
    unrated: int = 0
    refused: int = 0
    refused_at_channel_limit: int = 0

    @classmethod
    def of(cls, row: dict[str, Any], *, label: str = "", key: str = "") -> Usage:
        sums: dict[str, Any] = {
            name: row.get(f"sum_{name}") or (ZERO if name == "cost" else 0) for name in USAGE_FIELDS
        }
        return cls(label=label, key=key, **sums)

    @property
    def minutes(self) -> Decimal:
        """Billable minutes, to one decimal place."""
        return (Decimal(self.billable_seconds) / 60).quantize(Decimal("0.1"))

    def add(self, other: Usage) -> None:
        for name in USAGE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class UsageReport:
    month: Month
    currency: str
    total: Usage
    by_profile: list[Usage]
    by_destination: list[Usage]
    by_day: list[Usage]  # every day of the month, in order


def destination_label(country: str, destination_class: str, direction: str) -> str:
    if direction != Cdr.Direction.OUTBOUND:
        return DIRECTION_NAMES.get(direction, direction) + " calls"
    if not country and not destination_class:
        return "Not covered by a rate"
    name = countries.name(country) if country else "International networks"  # type: ignore[no-untyped-call]
    return f"{name or country} · {CLASS_NAMES.get(destination_class, destination_class).lower()}"


def usage_report(*, company: Company, month: Month, profile: SipProfile | None = None) -> UsageReport:
    """Calls, minutes, cost and bundle minutes of the month per profile, per destination and
    per day. Queries: 4 (per profile, per destination, per day, the profiles' names)."""
    sums = _sums()
    # Per profile from the per-day roll-up: fewer rows than the month's per destination.
    days = _days(company, month, profile)
    per_profile = list(days.values("sip_profile_id").annotate(**_day_sums()).order_by("sip_profile_id"))
    per_destination = list(
        _calls(company, month, profile)
        .values("direction", "country", "destination_class")
        .annotate(**sums)
        .order_by("direction", "country", "destination_class")
    )
    per_day = {row["day"]: row for row in days.values("day").annotate(**_day_sums()).order_by("day")}
    names = {
        pk: (name, str(public_id))
        for pk, name, public_id in SipProfile.objects.for_company(company)
        .filter(pk__in=[row["sip_profile_id"] for row in per_profile])
        .values_list("pk", "name", "public_id")
    }
    by_profile = [
        Usage.of(row, label=label, key=key)
        for row in per_profile
        for label, key in [names.get(row["sip_profile_id"], ("No profile", ""))]
    ]
    by_profile.sort(key=lambda u: (-u.cost, -u.billable_seconds, u.label))
    by_destination = [
        Usage.of(
            row,
            label=destination_label(row["country"], row["destination_class"], row["direction"]),
            key=f"{row['direction']}:{row['country']}:{row['destination_class']}",
        )
        for row in per_destination
    ]
    by_destination.sort(key=lambda u: (-u.cost, -u.billable_seconds, u.label))
    by_day = [Usage.of(per_day.get(day, {}), label=day.isoformat(), key=day.isoformat()) for day in month.days]
    total = Usage(label="Total")
    for usage in by_profile:
        total.add(usage)
    return UsageReport(month, company.currency, total, by_profile, by_destination, by_day)


# --- Summary: where the credit went ----------------------------------------------------------


@dataclass
class SpendDay:
    day: date
    calls: Decimal = ZERO
    channels: Decimal = ZERO
    bundles: Decimal = ZERO
    numbers: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.calls + self.channels + self.bundles + self.numbers


@dataclass
class SummaryReport:
    month: Month
    currency: str
    purchases: Decimal = ZERO
    purchase_count: int = 0
    refunds: Decimal = ZERO
    allocated: Decimal = ZERO
    taken_back: Decimal = ZERO
    calls: Decimal = ZERO
    call_count: int = 0
    channels: Decimal = ZERO
    bundles: Decimal = ZERO
    numbers: Decimal = ZERO
    adjustments: Decimal = ZERO
    days: list[SpendDay] = field(default_factory=list)

    @property
    def spent(self) -> Decimal:
        """What the month's calls and recurring charges cost."""
        return self.calls + self.channels + self.bundles + self.numbers

    def lines(self) -> list[tuple[str, str, Decimal]]:
        """(key, label, amount) of the summary table, in its order."""
        return [
            ("purchases", "Credit bought", self.purchases),
            ("refunds", "Refunded", self.refunds),
            ("allocated", "Allocated to profiles", self.allocated),
            ("taken_back", "Taken back from profiles", self.taken_back),
            ("calls", "Calls", self.calls),
            ("channels", "Channels", self.channels),
            ("bundles", "US minute bundles", self.bundles),
            ("numbers", "Online Numbers", self.numbers),
            ("adjustments", "Adjustments", self.adjustments),
        ]


CHARGE_REVENUE = {
    Account.REVENUE_CHANNELS: "channels",
    Account.REVENUE_BUNDLES: "bundles",
    Account.REVENUE_NUMBERS: "numbers",
}


def summary_report(*, company: Company, month: Month) -> SummaryReport:
    """Where the company's credit went in the month: credit bought and refunded, allocated to
    and taken back from profiles, and spent on calls, channels, bundles and numbers, with the
    spend of each day. Calls from the daily call figures (the cost of the month's calls, as
    rated); everything else from the ledger's entries of the month. Queries: 2."""
    report = SummaryReport(month, company.currency)
    days = {day: SpendDay(day) for day in month.days}
    calls = (
        _days(company, month, None).values("day").annotate(day_cost=Sum("cost"), day_calls=Sum("calls")).order_by("day")
    )
    for row in calls:
        days[row["day"]].calls = row["day_cost"]
        report.calls += row["day_cost"]
        report.call_count += row["day_calls"]
    # Call transactions are left out here (the calls are counted above, by the day they were
    # made): a month of per-second rating runs is most of a company's ledger.
    entries = (
        LedgerEntry.objects.filter(
            transaction__company=company,
            transaction__created_at__gte=month.start,
            transaction__created_at__lt=month.end,
            transaction__kind__in=[Txn.PURCHASE, Txn.REFUND, Txn.ALLOCATION, Txn.TAKE_BACK, Txn.CHARGE, Txn.ADJUSTMENT],
        )
        .values("transaction__kind", "account__kind", day=TruncDate("transaction__created_at", tzinfo=UTC))
        .annotate(amount=Sum("amount"), transactions=Count("transaction_id", distinct=True))
        .order_by()
    )
    for row in entries:
        kind, account, amount = row["transaction__kind"], row["account__kind"], row["amount"]
        if kind == Txn.PURCHASE and account == Account.COMPANY_BALANCE:
            report.purchases += amount
            report.purchase_count += row["transactions"]
        elif kind == Txn.REFUND and account == Account.COMPANY_BALANCE:
            report.refunds -= amount
        elif kind == Txn.ALLOCATION and account == Account.PROFILE_BALANCE:
            report.allocated += amount
        elif kind == Txn.TAKE_BACK and account == Account.PROFILE_BALANCE:
            report.taken_back -= amount
        elif kind == Txn.CHARGE and account in CHARGE_REVENUE:
            name = CHARGE_REVENUE[account]
            setattr(report, name, getattr(report, name) + amount)
            day = days.get(row["day"])
            if day is not None:
                setattr(day, name, getattr(day, name) + amount)
        elif kind == Txn.ADJUSTMENT and account in LedgerAccount.CUSTOMER_KINDS:
            report.adjustments += amount
    report.days = list(days.values())
    return report


# --- Purchases and allocations -------------------------------------------------------------


@dataclass
class PurchasesReport:
    month: Month
    currency: str
    purchases: list[CreditPurchase]
    credited: Decimal
    refunded: Decimal


def purchases_report(*, company: Company, month: Month) -> PurchasesReport:
    """The credit purchases started in the month, oldest first, and what they credited and
    refunded. Queries: 1."""
    purchases = list(
        CreditPurchase.objects.for_company(company)
        .filter(created_at__gte=month.start, created_at__lt=month.end)
        .order_by("created_at", "id")
    )
    credited = sum((p.amount_received or ZERO for p in purchases if p.status in CreditPurchase.CREDITED), ZERO)
    refunded = sum((p.amount_received or ZERO for p in purchases if p.status == CreditPurchase.Status.REFUNDED), ZERO)
    return PurchasesReport(month, company.currency, purchases, credited, refunded)


@dataclass
class ProfileAllocation:
    profile: SipProfile
    allocated: Decimal = ZERO
    taken_back: Decimal = ZERO
    allocations: int = 0
    charges: Decimal = ZERO  # what the month's calls cost it

    @property
    def net(self) -> Decimal:
        return self.allocated - self.taken_back


@dataclass
class AllocationsReport:
    month: Month
    currency: str
    profiles: list[ProfileAllocation]

    @property
    def allocated(self) -> Decimal:
        return sum((p.allocated for p in self.profiles), ZERO)

    @property
    def taken_back(self) -> Decimal:
        return sum((p.taken_back for p in self.profiles), ZERO)

    @property
    def channels(self) -> int:
        return sum(p.profile.channels for p in self.profiles)

    @property
    def bundles(self) -> int:
        return sum(p.profile.us_minute_bundles for p in self.profiles)


def allocations_report(*, company: Company, month: Month, profile: SipProfile | None = None) -> AllocationsReport:
    """Per profile: the credit allocated to it and taken back in the month (from the ledger),
    its channels and US minute bundles now, and what its calls of the month cost. Queries: 3
    (the profiles, the ledger's allocations, the calls' cost)."""
    profiles = SipProfile.objects.for_company(company).live().order_by("name", "id")
    if profile is not None:
        profiles = profiles.filter(pk=profile.pk)
    rows = {p.pk: ProfileAllocation(p) for p in profiles}
    entries = (
        LedgerEntry.objects.filter(
            transaction__company=company,
            transaction__created_at__gte=month.start,
            transaction__created_at__lt=month.end,
            transaction__kind__in=[Txn.ALLOCATION, Txn.TAKE_BACK],
            account__kind=Account.PROFILE_BALANCE,
            account__sip_profile_id__in=list(rows),
        )
        .values("account__sip_profile_id", "transaction__kind")
        .annotate(amount=Sum("amount"), count=Count("id"))
        .order_by()
    )
    for row in entries:
        line = rows[row["account__sip_profile_id"]]
        if row["transaction__kind"] == Txn.ALLOCATION:
            line.allocated += row["amount"]
            line.allocations += row["count"]
        else:
            line.taken_back -= row["amount"]
    costs = (
        _days(company, month, profile)
        .filter(sip_profile_id__in=list(rows))
        .values("sip_profile_id")
        .annotate(calls_cost=Sum("cost"))
        .order_by()
    )
    for row in costs:
        rows[row["sip_profile_id"]].charges = row["calls_cost"]
    return AllocationsReport(month, company.currency, list(rows.values()))
