"""Reads about Online Numbers: the stock companies search, and what a company holds."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django_countries import countries

from apps.billing.charges.items import charge_item_label
from apps.billing.models import Charge
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.numbers.models import NumberSubscription, OnlineNumber

# What people type between digits: "+44 20-7946 (0958)".
_SEPARATORS = re.compile(r"[\s\-().]")
MAX_DIGITS = 15  # the longest E.164 number


def country_code(value: str | None) -> str | None:
    """An ISO 3166 code typed in any case, or None for nothing typed."""
    code = (value or "").strip().upper()
    if not code:
        return None
    if code not in countries:
        raise ApplicationError(f"“{value}” is not a country code; use two letters such as GB or US.", field="country")
    return code


def digits_wanted(value: str | None) -> tuple[str, bool] | None:
    """The digits to look for, and whether they must start the number (typed with a leading +)."""
    text = _SEPARATORS.sub("", value or "")
    if not text:
        return None
    anchored = text.startswith("+")
    digits = text.removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        raise ApplicationError("Enter digits only, e.g. 7946 or +4420.", field="contains")
    if len(digits) > MAX_DIGITS:
        raise ApplicationError(f"A phone number has at most {MAX_DIGITS} digits.", field="contains")
    return digits, anchored


def with_digits(queryset: QuerySet[OnlineNumber], wanted: tuple[str, bool]) -> QuerySet[OnlineNumber]:
    digits, anchored = wanted
    return queryset.filter(number__startswith=f"+{digits}") if anchored else queryset.filter(number__contains=digits)


def available_numbers(
    *,
    country: str | None = None,
    area: str | None = None,
    contains: str | None = None,
    number_type: str | None = None,
) -> QuerySet[OnlineNumber]:
    """Stock a company may buy now (the API's filters: apps.numbers.filters).

    `contains` matches digits anywhere in the E.164 number, ignoring spaces, dashes,
    dots and brackets; with a leading "+" it matches the start (country and area
    codes: "+4420" is London).
    """
    queryset = OnlineNumber.objects.filter(status=OnlineNumber.Status.AVAILABLE)
    code = country_code(country)
    if code:
        queryset = queryset.filter(country=code)
    if area and area.strip():
        queryset = queryset.filter(area__icontains=area.strip())
    wanted = digits_wanted(contains)
    if wanted is not None:
        queryset = with_digits(queryset, wanted)
    if number_type:
        if number_type not in OnlineNumber.Type.values:
            raise ApplicationError(
                f"Choose one of {', '.join(OnlineNumber.Type.values)}.", field="type", code="invalid_choice"
            )
        queryset = queryset.filter(number_type=number_type)
    return queryset.order_by("number")


def with_relations(queryset: QuerySet[NumberSubscription]) -> QuerySet[NumberSubscription]:
    """What a list of subscriptions shows, in one query: active ones first."""
    return queryset.select_related("number", "business_account").order_by("status", "number__number", "-created_at")


def number_subscriptions_for(company: Company, *, status: str | None = None) -> QuerySet[NumberSubscription]:
    queryset = with_relations(NumberSubscription.objects.for_company(company))
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def business_account_for(company: Company, public_id: Any) -> BusinessAccount | None:
    """The company's business account with this id; None for None; a field error otherwise."""
    if public_id in (None, ""):
        return None
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    account = BusinessAccount.objects.for_company(company).filter(public_id=key).first() if key else None
    if account is None:
        raise ApplicationError("Choose a business account of your company.", field="business_account")
    return account


def business_accounts_for(company: Company) -> QuerySet[BusinessAccount]:
    return BusinessAccount.objects.for_company(company).order_by("name")


def charge_item(subscription: NumberSubscription) -> str:
    return charge_item_label("numbers.numbersubscription", subscription.public_id)


def number_charges(subscription: NumberSubscription) -> QuerySet[Charge]:
    """Every purchase and renewal of this subscription, newest first."""
    return (
        Charge.objects.for_company(subscription.company)
        .filter(item=charge_item(subscription))
        .order_by("-period_start")
    )


def number_subscriptions_ending(
    *, company: Company, within: timedelta, at: datetime | None = None
) -> QuerySet[NumberSubscription]:
    """Active subscriptions that will not renew (auto-renew off) and end within `within`,
    soonest first: the number is released at the end of its period. Queries: 1 when evaluated."""
    at = at or timezone.now()
    return with_relations(
        NumberSubscription.objects.for_company(company).filter(
            status=NumberSubscription.Status.ACTIVE, auto_renew=False, current_period_end__lte=at + within
        )
    ).order_by("current_period_end", "id")
