"""The filters of the business-account lists (the API's and the page's)."""

from __future__ import annotations

import uuid

import django_filters
from django.db.models import Q, QuerySet

from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.selectors import UNASSIGNED
from apps.core.exceptions import ApplicationError
from apps.core.filters import CleanedCharFilter


def _profile_id_or_unassigned(value: str) -> str:
    if value == UNASSIGNED:
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApplicationError("Give a profile id or “none”.") from None


class BusinessAccountFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the name or display name.")
    sip_profile = CleanedCharFilter(
        clean_value=_profile_id_or_unassigned,
        method="filter_sip_profile",
        help_text="A profile's id for the accounts routed to it, or `none` for unrouted ones.",
    )

    class Meta:
        model = BusinessAccount
        fields = ["search", "sip_profile"]

    def filter_search(self, queryset: QuerySet[BusinessAccount], name: str, value: str) -> QuerySet[BusinessAccount]:
        return queryset.filter(Q(name__icontains=value) | Q(display_name__icontains=value))

    def filter_sip_profile(
        self, queryset: QuerySet[BusinessAccount], name: str, value: str
    ) -> QuerySet[BusinessAccount]:
        if value == UNASSIGNED:
            return queryset.filter(sip_profile__isnull=True)
        return queryset.filter(sip_profile__public_id=value)
