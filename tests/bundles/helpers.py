"""Profiles, credit and CDRs for the bundle tests, made through the services."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.bundles.models import BundlePeriod
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create
from tests.factories import grant

BUNDLE_PRICE = Decimal("31.00")  # a US minute bundle per month in GBP, seeded
CHANNEL_PRICE = Decimal("7.95")
_grants = iter(range(1, 1_000_000))


def new_profile(
    company: Company, owner: Any, *, channels: int = 3, name: str = "Main PBX", **fields: Any
) -> SipProfile:
    profile, _ = sip_profile_create(
        actor=Actor(user=owner), company=company, name=name, auth_method="registration", channels=channels, **fields
    )
    return profile


def credit(company: Company, amount: str = "500") -> None:
    grant(company, amount, f"stripe:pi_bundles_{company.pk}_{next(_grants)}")


def period_of(profile: SipProfile, start: datetime) -> BundlePeriod:
    return BundlePeriod.objects.get(sip_profile=profile, period_start=start)
