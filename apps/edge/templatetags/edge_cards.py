"""The SIP profile pages' edge cards, rendered by the edge: the profile page's "SIP edge" card
and the "Connect your PBX" page's servers and DNS SRV records. The pages load these tags, so
sip_profiles imports nothing of the edge."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from apps.edge.models import EdgeNode
from apps.edge.pbx_config import pbx_configuration
from apps.edge.provisioning import provisioning_by_profile
from apps.edge.selectors import edge_servers, srv_records, srv_zone
from apps.sip_profiles.models import SipProfile

register = template.Library()


@register.inclusion_tag("edge/_provisioning_card.html", takes_context=True)
def edge_provisioning_card(context: template.Context, profile: SipProfile) -> dict[str, Any]:
    """Where the profile stands on each enabled node (one query); a failure's technical
    reason only for staff (`user`)."""
    return {
        "profile": profile,
        "nodes": provisioning_by_profile([profile.pk]).get(profile.pk, []),
        "user": context.get("user"),
    }


@register.inclusion_tag("edge/_connect_cards.html")
def edge_connect_cards(profile: SipProfile, rtp_last_port: int) -> dict[str, Any]:
    """The "Connect your PBX" page's edge cards: where the PBX sends its requests (the SIP
    domain by DNS SRV, each node's host and ports) and the SRV records as a zone-file snippet
    for the admin to copy (one query)."""
    servers = edge_servers()
    records = srv_records(domain=settings.SIP_DOMAIN, servers=servers)
    ports = sorted({(s.sip_port, s.tls_port) for s in servers}, key=lambda p: (p[0], p[1] or 0))
    # Without SRV, a PBX is given host:port, the TLS port when the profile requires TLS.
    proxies = [f"{s.host}:{s.tls_port if profile.tls_required and s.tls_port else s.sip_port}" for s in servers]
    return {
        "profile": profile,
        "sip_domain": settings.SIP_DOMAIN,
        "servers": servers,
        "primary": servers[0] if servers else None,
        "primary_proxy": proxies[0] if proxies else "",
        "backup_proxies": proxies[1:],
        "ports": ports,
        "zone": srv_zone(records),
        "rtp_last_port": rtp_last_port,
        "edge_rtp_min": settings.EDGE_RTP_PORT_MIN,
        "edge_rtp_max": settings.EDGE_RTP_PORT_MAX,
        "rtp_range": f"8000–{rtp_last_port}",
        "edge_rtp_range": f"{settings.EDGE_RTP_PORT_MIN}–{settings.EDGE_RTP_PORT_MAX}",
    }


@register.inclusion_tag("edge/_pbx_configs.html")
def edge_pbx_configs(profile: SipProfile, password: str | None = None) -> dict[str, Any]:
    """The firewall rules and ready-to-paste PBX configurations of the profile (one query for the
    nodes, one for an IP profile's addresses). `password` only in the response that set it."""
    return {
        "profile": profile,
        "config": pbx_configuration(
            profile=profile, servers=edge_servers(), sip_domain=settings.SIP_DOMAIN, password=password
        ),
    }


@register.inclusion_tag("edge/_live_card.html")
def edge_live_card(profile: SipProfile) -> dict[str, Any]:
    """The trunk's registrations and calls now. The page does not wait for the nodes: the card
    fetches its content (apps.edge.views.ProfileLiveStatusView) once the page is shown, then
    every 5 s. Queries: whether any node is enabled (1)."""
    return {"profile": profile, "has_nodes": EdgeNode.objects.filter(enabled=True).exists()}
