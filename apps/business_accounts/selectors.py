"""Reads about business accounts: the company's list, and the "call us" snippet."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.html import escape

from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company, Membership
from apps.sip_profiles.models import SipProfile

# Inline so that it looks like a button on any website without our stylesheet.
BUTTON_STYLE = (
    "display:inline-block;padding:10px 18px;background:#0a6cbd;color:#fff;"
    "border-radius:4px;font-family:sans-serif;font-weight:600;text-decoration:none"
)
UNASSIGNED = "none"  # the `sip_profile` filter's value for accounts routed nowhere


def with_relations(queryset: QuerySet[BusinessAccount]) -> QuerySet[BusinessAccount]:
    """A list of accounts as the pages and the API show them (filters: apps.business_accounts.filters)."""
    return queryset.select_related("sip_profile", "member__user").order_by("name")


def sip_address(account: BusinessAccount) -> str:
    return f"sip:{account.name}@{settings.SIP_DOMAIN}"


def call_button_html(account: BusinessAccount) -> str:
    """A copy-paste button for the company's website: a sip: link that calls the account.

    A plain str (not marked safe), so that templates show it as text in the copy box."""
    href, label = escape(sip_address(account)), escape(account.display_name)
    return f'<a href="{href}" style="{BUTTON_STYLE}">Call {label}</a>'


def member_choices(*, company: Company) -> QuerySet[Membership]:
    return Membership.objects.for_company(company).select_related("user").order_by("user__email")


def live_profiles(*, company: Company) -> QuerySet[Any]:
    return SipProfile.objects.for_company(company).live().order_by("name")
