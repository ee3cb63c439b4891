"""The desired edge state, computed from the portal's rows only (never from a node)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import phonenumbers
from django.conf import settings

from apps.edge.models import Carrier, EdgeNode
from apps.rating.call_policy import call_policy
from apps.rating.models import BlockedPrefix
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import caller_id_e164

# htable value types (Kamailio's htable table): 0 string, 1 integer.
STR, INT = 0, 1


@dataclass(frozen=True)
class Subscriber:
    username: str
    domain: str
    ha1: str
    ha1_sha256: str


@dataclass(frozen=True)
class Address:
    ip: str
    mask: int
    port: int


@dataclass(frozen=True)
class EdgeState:
    """What every node must hold for one profile. A profile that is gone holds nothing."""

    profile_id: int
    subscriber: Subscriber | None = None
    addresses: frozenset[Address] = frozenset()
    # htable "prof": key "<profile id>:<attribute>" → (value type, value as text).
    attrs: dict[str, tuple[int, str]] = field(default_factory=dict)


def profile_edge_state(*, profile_id: int) -> EdgeState:
    """Queries: the profile with its caller ID rows (1), its addresses (1), its call policy (2)."""
    profile = (
        SipProfile.objects.select_related("caller_id_number__number", "caller_id_landline")
        .filter(pk=profile_id, deleted_at__isnull=True)
        .first()
    )
    if profile is None:
        return EdgeState(profile_id=profile_id)
    subscriber = None
    if profile.auth_method == SipProfile.AuthMethod.REGISTRATION and profile.sip_username:
        subscriber = Subscriber(
            username=profile.sip_username,
            domain=profile.sip_realm or settings.SIP_DOMAIN,
            ha1=profile.ha1_md5,
            ha1_sha256=profile.ha1_sha256,
        )
    addresses: frozenset[Address] = frozenset()
    if profile.auth_method == SipProfile.AuthMethod.IP:
        addresses = frozenset(
            _address(network, port) for network, port in profile.allowed_addresses.values_list("network", "port")
        )
    policy = call_policy(profile)
    values: dict[str, tuple[int, str]] = {
        "active": (INT, "1" if policy.inbound_calls_allowed else "0"),
        "channels": (INT, str(profile.channels)),
        "out": (INT, "1" if policy.paid_calls_allowed else "0"),
        "bundle": (INT, "1" if policy.bundle_calls_allowed else "0"),
        "tls": (INT, "1" if profile.tls_required else "0"),
        "srtp": (INT, "1" if profile.srtp_required else "0"),
        "withhold": (INT, "1" if profile.withhold_caller_id else "0"),
    }
    caller_id = caller_id_e164(profile)
    if caller_id:
        values["cid"] = (STR, caller_id)
    attrs = {f"{profile_id}:{name}": value for name, value in values.items()}
    return EdgeState(profile_id=profile_id, subscriber=subscriber, addresses=addresses, attrs=attrs)


def _address(network: str, port: int) -> Address:
    net = ipaddress.ip_network(network, strict=False)
    return Address(ip=str(net.network_address), mask=net.prefixlen, port=port)


def blocked_edge_entries() -> dict[str, str]:
    """htable "blocked": "+<E.164 prefix>" for international prefixes and for a national short
    code in its country's E.164 form ("+1911"); "d:<code>" for a code as dialled (prefix) and
    "x:<code>" for one matched only whole (the operator's "0")."""
    entries: dict[str, str] = {}
    for country, prefix, exact, reason in BlockedPrefix.objects.values_list("country", "prefix", "exact", "reason"):
        if prefix.startswith("+"):
            entries[prefix] = reason
            continue
        entries[f"{'x' if exact else 'd'}:{prefix}"] = reason
        if country != BlockedPrefix.ANY_COUNTRY and not exact:
            code = phonenumbers.country_code_for_region(country)
            if code:
                entries[f"+{code}{prefix}"] = reason
    return entries


def carrier_destinations() -> list[tuple[str, int]]:
    """Dispatcher set 1: (SIP URI, priority) of each enabled carrier."""
    return [(carrier.sip_uri, carrier.priority) for carrier in Carrier.objects.filter(enabled=True)]


def edge_nodes(*, names: list[str] | None = None) -> list[EdgeNode]:
    nodes = EdgeNode.objects.filter(enabled=True)
    if names:
        nodes = EdgeNode.objects.filter(name__in=names)
    return list(nodes)
