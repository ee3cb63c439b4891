"""The Calls filters, shared by the page, its CSV and the API (`GET /api/v1/calls/`): a SIP
profile, a direction, a number (caller or callee), a date range and answered or not. A bad
value is a form error on the page and a 400 naming the field in the API."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from apps.cdrs.models import Cdr
from apps.core.exceptions import ApplicationError
from apps.core.filters import ChoiceByIdFilter, CleanedCharFilter, choice_filter
from apps.sip_profiles.models import SipProfile

_SEPARATORS = re.compile(r"[\s\-().]")
_DIGITS = re.compile(r"^\+?[0-9]{3,15}$")


def _number(value: str) -> str:
    """What a person types of a number ("+1 415 555", "4155550123") → its digits, matched
    anywhere in the caller or the callee."""
    text = _SEPARATORS.sub("", value)
    if not _DIGITS.match(text):
        raise ApplicationError("Give 3 to 15 digits of a number, e.g. +14155550123 or 4155550123.")
    return text.removeprefix("+")


def _company_profiles(request: Any) -> QuerySet[SipProfile]:
    # Deleted profiles too: their calls stay listed.
    return SipProfile.objects.filter(company=request.tenancy.company)


def day_start(day: date) -> datetime:
    """Midnight starting `day` in the portal's time zone (the days of the credit history too)."""
    return datetime.combine(day, time.min, timezone.get_current_timezone())


class CallFilter(django_filters.FilterSet):
    """Filters a company's calls (apps.cdrs.selectors.call_list). Needs `request.tenancy`."""

    profile = ChoiceByIdFilter(
        queryset=_company_profiles,
        to_field_name="public_id",
        field_name="sip_profile",
        error_messages={"invalid_choice": "No such SIP profile."},
        help_text="The id of one of your SIP profiles.",
    )
    direction = choice_filter(Cdr.Direction, help_text="outbound, inbound or on_net.")
    number = CleanedCharFilter(
        clean_value=_number, method="filter_number", help_text="Digits of the caller's or the callee's number."
    )
    date_from = django_filters.DateFilter(
        method="filter_date_from", help_text="Calls started on or after this day (YYYY-MM-DD, UTC)."
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to", help_text="Calls started on or before this day (YYYY-MM-DD, UTC)."
    )
    answered = django_filters.ChoiceFilter(
        choices=[("true", "Answered"), ("false", "Not answered")],
        method="filter_answered",
        error_messages={"invalid_choice": "Choose true or false."},
        help_text="true: answered calls only; false: calls never answered (busy, no answer, refused…).",
    )

    class Meta:
        model = Cdr
        fields = ["profile", "direction", "number", "date_from", "date_to", "answered"]

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if valid:
            start, end = self.form.cleaned_data.get("date_from"), self.form.cleaned_data.get("date_to")
            if start and end and end < start:
                self.form.add_error("date_to", "The last day comes before the first.")
                return False
        return valid

    def filter_number(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(Q(caller__contains=value) | Q(callee__contains=value))

    def filter_date_from(self, queryset: QuerySet[Any], name: str, value: date) -> QuerySet[Any]:
        return queryset.filter(started_at__gte=day_start(value))

    def filter_date_to(self, queryset: QuerySet[Any], name: str, value: date) -> QuerySet[Any]:
        if value == date.max:  # no day after it to end at
            return queryset
        return queryset.filter(started_at__lt=day_start(value + timedelta(days=1)))

    @extend_schema_field(OpenApiTypes.BOOL)
    def filter_answered(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(answered_at__isnull=value != "true")
