"""Which numbers a company may present as caller ID right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from apps.callerid.models import CallerIdCountry, Landline
from apps.companies.models import Company
from apps.numbers.models import NumberSubscription


@dataclass(frozen=True)
class CallerIdOption:
    e164: str
    kind: str  # "online_number" or "landline"
    label: str
    source: Any  # NumberSubscription or Landline


def supported_countries() -> set[str]:
    return {str(code) for code in CallerIdCountry.objects.values_list("country", flat=True)}


def usable_landlines(*, company: Company) -> QuerySet[Landline]:
    """Verified, unexpired landlines, and only while the company itself is verified."""
    if not company.is_verified:
        return Landline.objects.none()
    return Landline.objects.for_company(company).filter(status=Landline.Status.VERIFIED, expires_at__gt=timezone.now())


def caller_id_options(*, company: Company) -> list[CallerIdOption]:
    countries = supported_countries()
    options = [
        CallerIdOption(
            e164=str(subscription.number.number),
            kind="online_number",
            label=f"{subscription.number.number} (Online Number, "
            f"{subscription.number.area or subscription.number.country.name})",
            source=subscription,
        )
        for subscription in NumberSubscription.objects.for_company(company)
        .filter(status=NumberSubscription.Status.ACTIVE, number__country__in=countries)
        .select_related("number")
    ]
    options += [
        CallerIdOption(
            e164=str(landline.number), kind="landline", label=f"{landline.number} (your landline)", source=landline
        )
        for landline in usable_landlines(company=company)
    ]
    return options


def landline_list(*, company: Company) -> QuerySet[Landline]:
    """The company's registrations, live ones first, newest first."""
    return landlines_live_first(Landline.objects.for_company(company))


def landlines_live_first(queryset: QuerySet[Landline]) -> QuerySet[Landline]:
    live_first = Case(
        When(status__in=[Landline.Status.PENDING, Landline.Status.VERIFIED], then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return queryset.order_by(live_first, "-created_at", "-id")


def supported_country_list() -> list[tuple[str, str]]:
    """(code, name) of the countries where caller ID is supported, by name."""
    return sorted(((str(c.country), c.country.name) for c in CallerIdCountry.objects.all()), key=lambda item: item[1])


def landlines_expiring(*, company: Company, within: timedelta, at: datetime | None = None) -> QuerySet[Landline]:
    """Verified landlines whose proof runs out within `within`, soonest first: then they stop
    being a caller ID until proved again. Queries: 1 when evaluated."""
    at = at or timezone.now()
    return (
        Landline.objects.for_company(company)
        .filter(status=Landline.Status.VERIFIED, expires_at__gt=at, expires_at__lte=at + within)
        .order_by("expires_at", "id")
    )
