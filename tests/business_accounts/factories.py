"""Business accounts for tests, made through the services."""

from __future__ import annotations

from typing import Any

from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.services import business_account_assign, business_account_create
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.sip_profiles.models import SipProfile


def sip_profile(company: Company, name: str = "Main PBX") -> SipProfile:
    """A profile row made directly: the profile services belong to another part of the code."""
    return SipProfile.objects.create(company=company, name=name, auth_method="ip")


def business_account(company: Company, owner: Any, name: str = "sales.desk", **fields: Any) -> BusinessAccount:
    return business_account_create(
        actor=Actor(user=owner),
        company=company,
        name=name,
        display_name=fields.pop("display_name", "Sales"),
        **fields,
    )


def populate_business_accounts(company: Company, owner: Any) -> BusinessAccount:
    """One business account of the company, routed to one of its SIP profiles."""
    account = business_account(company, owner, name=f"desk{company.pk:04d}", display_name="Front desk")
    return business_account_assign(
        actor=Actor(user=owner), account=account, profile=sip_profile(company, f"Profile {company.pk}")
    )
