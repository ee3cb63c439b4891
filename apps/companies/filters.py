"""The filters of the company's member list in the API."""

from __future__ import annotations

import django_filters

from apps.companies.models import Membership


class MemberFilter(django_filters.FilterSet):
    class Meta:
        model = Membership
        fields = ["role"]
