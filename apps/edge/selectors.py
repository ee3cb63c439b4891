"""The desired edge state, computed from the portal's rows only (never from a node)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from django.conf import settings

from apps.business_accounts.models import BusinessAccount
from apps.edge.models import Carrier, EdgeNode
from apps.numbers.models import NumberSubscription
from apps.rating.call_policy import call_policy
from apps.rating.models import BlockedPrefix
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import caller_id_e164

# htable value types (Kamailio's htable table): 0 string, 1 integer.
STR, INT = 0, 1
# The permissions address group of the carriers' inbound sources (profiles use their id as
# the group, so profile ids must stay below it); the same number is the cfg's
# EDGE_CARRIER_GROUP.
CARRIER_GROUP = 2_000_000_000


@dataclass(frozen=True)
class Subscriber:
    username: str
    domain: str
    ha1: str
    ha1_sha256: str


@dataclass(frozen=True)
class Address:
    """A row of the node's permissions `address` table. A TCP or TLS client connects from any
    port, so only UDP sources are held to theirs (port 0 matches any); the transport is the
    row's tag, which the edge compares with the request's."""

    ip: str
    mask: int
    port: int
    transport: str = "udp"


@dataclass(frozen=True)
class EdgeState:
    """What every node must hold for one profile. A profile that is gone holds nothing."""

    profile_id: int
    subscriber: Subscriber | None = None
    addresses: frozenset[Address] = frozenset()
    # htable "prof": key "<profile id>:<attribute>" → (value type, value as text).
    attrs: dict[str, tuple[int, str]] = field(default_factory=dict)
    # htable "route": "n:+<E.164>" and "a:<business account name>" → this profile.
    routes: frozenset[str] = frozenset()


def profile_edge_state(*, profile_id: int) -> EdgeState:
    """Queries: the profile with its caller ID rows (1), its addresses (1), its call policy (2),
    its inbound routes (2)."""
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
            _address(network, port if transport == "udp" else 0, transport)
            for network, port, transport in profile.allowed_addresses.values_list("network", "port", "transport")
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
    values.update(_inbound_destination(profile, subscriber, addresses))
    attrs = {f"{profile_id}:{name}": value for name, value in values.items()}
    return EdgeState(
        profile_id=profile_id,
        subscriber=subscriber,
        addresses=addresses,
        attrs=attrs,
        routes=inbound_routes(profile_id=profile_id),
    )


def _inbound_destination(
    profile: SipProfile, subscriber: Subscriber | None, addresses: frozenset[Address]
) -> dict[str, tuple[int, str]]:
    """Where the edge sends the profile's inbound calls: a registering PBX at the contact it
    registered for its username ("user"), an IP profile at its first host address, with that
    address's port and transport ("dst", host:port;transport=...). A network cannot be a
    destination (which of its hosts?): an IP profile with networks only has no "dst", and
    the edge answers its inbound calls 480."""
    if subscriber is not None:
        return {"user": (STR, subscriber.username)}
    if profile.auth_method != SipProfile.AuthMethod.IP:
        return {}
    for network, port, transport in profile.allowed_addresses.order_by("id").values_list(
        "network", "port", "transport"
    ):
        net = ipaddress.ip_network(network, strict=False)
        if net.num_addresses != 1:
            continue
        host = f"[{net.network_address}]" if net.version == 6 else str(net.network_address)
        return {"dst": (STR, f"{host}:{port};transport={transport}")}
    return {}


def inbound_routes(*, profile_id: int) -> frozenset[str]:
    """The route keys of one live profile: the Online Numbers of its business accounts whose
    subscription is active (a suspended, expired or released number is routed nowhere) and the
    names of those accounts. Queries: 2."""
    names = BusinessAccount.objects.filter(sip_profile_id=profile_id).values_list("name", flat=True)
    numbers = NumberSubscription.objects.filter(
        business_account__sip_profile_id=profile_id, status=NumberSubscription.Status.ACTIVE
    ).values_list("number__number", flat=True)
    return frozenset({f"a:{name.lower()}" for name in names} | {f"n:{number}" for number in numbers})


def _address(network: str, port: int, transport: str = "udp") -> Address:
    net = ipaddress.ip_network(network, strict=False)
    return Address(ip=str(net.network_address), mask=net.prefixlen, port=port, transport=transport)


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


def carrier_sources() -> frozenset[Address]:
    """The addresses and networks the enabled carriers send inbound calls from (any port)."""
    sources = set()
    for inbound_from in Carrier.objects.filter(enabled=True).values_list("inbound_from", flat=True):
        for entry in inbound_from or []:
            sources.add(_address(str(entry), 0))
    return frozenset(sources)


def carrier_destinations() -> list[tuple[str, int]]:
    """Dispatcher set 1: (SIP URI, priority) of each enabled carrier."""
    return [(carrier.sip_uri, carrier.priority) for carrier in Carrier.objects.filter(enabled=True)]


def edge_nodes(*, names: list[str] | None = None) -> list[EdgeNode]:
    nodes = EdgeNode.objects.filter(enabled=True)
    if names:
        nodes = EdgeNode.objects.filter(name__in=names)
    return list(nodes)


# --- What customers point their PBX at ("Connect your PBX") ---------------------------

# DNS SRV priority per role: lower is tried first, so PBXs use the primary while it answers
# and fall back to the secondary; nodes of one role share their priority and the load.
SRV_PRIORITY: dict[str, int] = {EdgeNode.Role.PRIMARY: 10, EdgeNode.Role.SECONDARY: 20}
SRV_WEIGHT = 10
SRV_TTL = 3600
DEFAULT_SIP_PORT, DEFAULT_TLS_PORT = 5060, 5061


@dataclass(frozen=True)
class EdgeServer:
    host: str  # the public host name customers see
    role: str
    sip_port: int
    tls_port: int | None
    # The node's own address: SIP and rtpengine's media both use it (a firewall needs it, not
    # the name); "" for the EDGE_PUBLIC_HOSTS names shown before any node is configured.
    address: str = ""

    @property
    def priority(self) -> int:
        return SRV_PRIORITY.get(self.role, max(SRV_PRIORITY.values()))


@dataclass(frozen=True)
class SrvRecord:
    name: str  # "_sip._udp.sip.example.com."
    priority: int
    weight: int
    port: int
    target: str  # "sip1.example.com."
    ttl: int = SRV_TTL

    def zone_line(self, name_width: int = 0) -> str:
        return f"{self.name:<{name_width}} {self.ttl} IN SRV {self.priority} {self.weight} {self.port} {self.target}"


def edge_servers() -> list[EdgeServer]:
    """The enabled nodes as customers reach them, primary first (their public host name, or
    their SIP address when they have none). Before any node is configured (a laptop, a new
    installation), the EDGE_PUBLIC_HOSTS setting's names on the standard ports: the first is
    the primary."""
    servers = [
        EdgeServer(
            host=node.public_host or node.sip_host,
            role=node.role,
            sip_port=node.sip_port,
            tls_port=node.tls_port,
            address=node.sip_host,
        )
        for node in EdgeNode.objects.filter(enabled=True).order_by("role", "name")
    ]
    if servers:
        return servers
    return [
        EdgeServer(
            host=host,
            role=EdgeNode.Role.PRIMARY if i == 0 else EdgeNode.Role.SECONDARY,
            sip_port=DEFAULT_SIP_PORT,
            tls_port=DEFAULT_TLS_PORT,
        )
        for i, host in enumerate(settings.EDGE_PUBLIC_HOSTS)
    ]


def srv_records(*, domain: str, servers: list[EdgeServer]) -> list[SrvRecord]:
    """The DNS SRV records of the SIP domain: `_sip._udp` and `_sip._tcp` to each server's SIP
    port, `_sips._tcp` to its TLS port (a server without TLS has none); primary first."""
    records = []
    for service, port_of in (
        ("_sip._udp", lambda s: s.sip_port),
        ("_sip._tcp", lambda s: s.sip_port),
        ("_sips._tcp", lambda s: s.tls_port),
    ):
        for server in sorted(servers, key=lambda s: s.priority):
            port = port_of(server)
            if port:
                records.append(
                    SrvRecord(
                        name=f"{service}.{domain.rstrip('.')}.",
                        priority=server.priority,
                        weight=SRV_WEIGHT,
                        port=port,
                        target=f"{server.host.rstrip('.')}.",
                    )
                )
    return records


def srv_zone(records: list[SrvRecord]) -> str:
    """The records as zone-file lines, names aligned, ready to paste into the zone."""
    width = max((len(r.name) for r in records), default=0)
    return "\n".join(r.zone_line(width) for r in records)


@dataclass(frozen=True)
class CdrImport:
    node: str
    last_id: int  # the node's CDRs are imported up to this id
    imported_at: datetime | None  # when the last batch came in (None: never)


def cdr_imports() -> list[CdrImport]:
    """Each enabled node's CDR import watermark. Queries: 1."""
    nodes = EdgeNode.objects.filter(enabled=True).select_related("cdr_watermark").order_by("role", "name")
    found = []
    for node in nodes:
        mark = getattr(node, "cdr_watermark", None)
        found.append(
            CdrImport(
                node=node.name,
                last_id=mark.last_id if mark else 0,
                imported_at=mark.imported_at if mark else None,
            )
        )
    return found
