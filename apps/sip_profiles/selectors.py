from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import CharField, Prefetch, QuerySet
from django.db.models.functions import Cast, Coalesce

from apps.business_accounts.models import BusinessAccount
from apps.sip_profiles.hooks import provisioning_of
from apps.sip_profiles.models import AllowedAddress, SipProfile


def with_details(queryset: QuerySet[SipProfile]) -> QuerySet[SipProfile]:
    """Everything a profile's page or API output shows, in a fixed number of queries."""
    return queryset.select_related("caller_id_number__number", "caller_id_landline").prefetch_related(
        Prefetch("allowed_addresses", queryset=AllowedAddress.objects.order_by("id")),
        Prefetch("business_accounts", queryset=BusinessAccount.objects.order_by("name")),
    )


PROFILE_VALUES = (
    "id",
    "public_id",
    "name",
    "description",
    "auth_method",
    "sip_username",
    "sip_realm",
    "channels",
    "us_minute_bundles",
    "withhold_caller_id",
    "tls_required",
    "srtp_required",
    "status",
    "provisioning_state",
    "created_at",
    "updated_at",
)


def profile_values(queryset: QuerySet[SipProfile]) -> QuerySet[Any]:
    """The profiles as dicts of what the API shows, with `caller_id` (E.164 text, as stored:
    the Online Number's or the landline's) read in the same query."""
    return queryset.values(*PROFILE_VALUES).annotate(
        caller_id=Coalesce(
            Cast("caller_id_number__number__number", CharField()), Cast("caller_id_landline__number", CharField())
        )
    )


def profile_details(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row of profile_values with its `allowed_addresses` (by id), `business_accounts`
    (names, by name) and `provisioning` (per edge node). Queries: 3 for any number of rows
    (each related table read once for all of them and grouped here: no queryset per profile)."""
    ids = [row["id"] for row in rows]
    addresses: dict[int, list[dict[str, Any]]] = defaultdict(list)
    accounts: dict[int, list[str]] = defaultdict(list)
    provisioning = provisioning_of(ids) if ids else {}
    if ids:
        for profile_id, network, port, transport in (
            AllowedAddress.objects.filter(profile_id__in=ids)
            .order_by("id")
            .values_list("profile_id", "network", "port", "transport")
        ):
            addresses[profile_id].append({"address": network, "port": port, "transport": transport})
        named = BusinessAccount.objects.filter(sip_profile_id__in=ids).order_by("name")
        for profile_id, name in named.values_list("sip_profile_id", "name"):
            accounts[profile_id].append(name)
    for row in rows:
        row["allowed_addresses"] = addresses.get(row["id"], [])
        row["business_accounts"] = accounts.get(row["id"], [])
        row["provisioning"] = provisioning.get(row["id"], [])
    return rows
