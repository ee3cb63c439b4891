"""The statement's filters (the API's ledger list and the statement page): a month, one SIP
profile's balance instead of the company's, a kind of transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from apps.billing.ledger.selectors import month_bounds
from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.core.exceptions import ApplicationError
from apps.core.filters import ChoiceByIdFilter, CleanedCharFilter, choice_filter


def _month(value: str) -> tuple[datetime, datetime]:
    try:
        return month_bounds(value)
    except (ValueError, OverflowError):  # 9999-12 has no next month to end at
        raise ApplicationError("Give the month as YYYY-MM, e.g. 2026-11.") from None


def _company_profiles(request: Any) -> QuerySet[Any]:
    # The profile model through the account's foreign key: billing imports no product.
    # Deleted profiles too: their statement stays readable.
    profiles = LedgerAccount._meta.get_field("sip_profile").related_model._default_manager  # type: ignore[union-attr]
    return profiles.filter(company=request.tenancy.company)


class StatementFilter(django_filters.FilterSet):
    """Filters a company's entries of every account: the company balance's unless `profile`
    names one of its SIP profiles. Needs `request.tenancy` (both company bases set it)."""

    profile = ChoiceByIdFilter(
        queryset=_company_profiles,
        to_field_name="public_id",
        method="filter_profile",
        error_messages={"invalid_choice": "No such SIP profile."},
        help_text="A SIP profile's balance instead.",
    )
    month = CleanedCharFilter(clean_value=_month, method="filter_month", help_text="YYYY-MM")
    kind = choice_filter(LedgerTransaction.Kind, field_name="transaction__kind")

    class Meta:
        model = LedgerEntry
        fields = ["profile", "month", "kind"]

    def filter_queryset(self, queryset: QuerySet[LedgerEntry]) -> QuerySet[LedgerEntry]:
        if not self.form.cleaned_data.get("profile"):
            queryset = queryset.filter(account__kind=LedgerAccount.Kind.COMPANY_BALANCE)
        return super().filter_queryset(queryset)  # type: ignore[no-any-return]

    @extend_schema_field(OpenApiTypes.UUID)
    def filter_profile(self, queryset: QuerySet[LedgerEntry], name: str, value: Any) -> QuerySet[LedgerEntry]:
        return queryset.filter(account__sip_profile=value)

    def filter_month(
        self, queryset: QuerySet[LedgerEntry], name: str, value: tuple[datetime, datetime]
    ) -> QuerySet[LedgerEntry]:
        start, end = value
        return queryset.filter(created_at__gte=start, created_at__lt=end)
