from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.business_accounts.models import BusinessAccount
from apps.sip_profiles.models import AllowedAddress, SipProfile


def with_details(queryset: QuerySet[SipProfile]) -> QuerySet[SipProfile]:
    """Everything a profile's page or API output shows, in a fixed number of queries."""
    return queryset.select_related("caller_id_number__number", "caller_id_landline").prefetch_related(
        Prefetch("allowed_addresses", queryset=AllowedAddress.objects.order_by("id")),
        Prefetch("business_accounts", queryset=BusinessAccount.objects.order_by("name")),
    )
