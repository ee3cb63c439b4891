"""The SIP profile page's "SIP edge" card, rendered by the edge: the profile page loads these
tags, so sip_profiles imports nothing of the edge."""

from __future__ import annotations

from typing import Any

from django import template

from apps.edge.provisioning import provisioning_by_profile
from apps.sip_profiles.models import SipProfile

register = template.Library()


@register.inclusion_tag("edge/_provisioning_card.html")
def edge_provisioning_card(profile: SipProfile) -> dict[str, Any]:
    """Where the profile stands on each enabled node (one query)."""
    return {"profile": profile, "nodes": provisioning_by_profile([profile.pk]).get(profile.pk, [])}
