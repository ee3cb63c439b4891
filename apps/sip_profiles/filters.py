"""The filters of the SIP profile lists: the API's (validated, a bad value is a 400 naming the
field) and the page's (the same filters; `q` is its search box)."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from apps.core.filters import choice_filter
from apps.sip_profiles.models import SipProfile


class SipProfileFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the name or SIP username.")
    auth_method = choice_filter(SipProfile.AuthMethod)
    status = choice_filter(SipProfile.Status)

    class Meta:
        model = SipProfile
        fields = ["search", "auth_method", "status"]

    def filter_search(self, queryset: QuerySet[SipProfile], name: str, value: str) -> QuerySet[SipProfile]:
        return queryset.filter(Q(name__icontains=value) | Q(sip_username__icontains=value))


class SipProfilePageFilter(SipProfileFilter):
    """The page's list: its search box is `q`; a value that is not a choice filters nothing."""

    search = None  # type: ignore[assignment]
    q = django_filters.CharFilter(method="filter_search")

    class Meta(SipProfileFilter.Meta):
        fields = ["q", "auth_method", "status"]
