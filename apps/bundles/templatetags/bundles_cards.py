"""The SIP profile page's US minute bundles card, rendered by the bundles app: the profile page
loads these tags, so sip_profiles imports nothing of bundles."""

from __future__ import annotations

from typing import Any

from django import template

from apps.bundles.forms import new_bundle_form
from apps.bundles.selectors import bundle_summary
from apps.sip_profiles.models import SipProfile

register = template.Library()


@register.simple_tag
def profile_bundles(profile: SipProfile) -> Any:
    """The profile's bundles summary (held count, this period's minutes), for the page's facts and card."""
    return bundle_summary(profile=profile)


@register.inclusion_tag("sip_profiles/_bundles.html", takes_context=True)
def bundles_card(context: template.Context, profile: SipProfile, bundles: Any) -> dict[str, Any]:
    """The bundles card; a bound form with its errors (a refused buy or cancel) comes from the page."""
    return {
        "profile": profile,
        "can_manage": context.get("can_manage"),
        "bundle_done": context.get("bundle_done"),
        "bundles": bundles,
        "bundle_form": context.get("bundle_form") or new_bundle_form(profile.us_minute_bundles),
    }
