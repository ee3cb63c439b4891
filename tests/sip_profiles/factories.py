"""SIP profiles for tests. Service-driven: `digest_profile`, `ip_profile` and
`populate_sip_profiles` go through sip_profile_create (so channels are charged and the
profile is marked for provisioning, as in the product). `held_number` is the exception: its
stock and subscription rows are made directly (the numbers app has its own tests)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.companies.models import Company
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create

PRICES = {f"price_{m}m_{c}": Decimal("3.00") for m in (3, 12) for c in ("usd", "eur", "gbp")}


def held_number(company: Company, number: str = "+442079460001", country: str = "GB") -> NumberSubscription:
    """An Online Number the company holds (rows made directly: the numbers app has its own tests)."""
    stock = OnlineNumber.objects.create(
        number=number, country=country, area="London", number_type="geographic", status="active", **PRICES
    )
    now = timezone.now()
    return NumberSubscription.objects.create(
        company=company,
        number=stock,
        months=3,
        price=Decimal("3.00"),
        currency=company.currency,
        current_period_start=now,
        current_period_end=now + timedelta(days=90),
    )


def digest_profile(company: Company, owner: Any, name: str = "Main PBX", **fields: Any) -> tuple[SipProfile, str]:
    profile, password = sip_profile_create(
        actor=Actor(user=owner), company=company, name=name, auth_method="registration", channels=2, **fields
    )
    assert password is not None
    return profile, password


def ip_profile(
    company: Company,
    owner: Any,
    address: str = "192.0.2.10",
    name: str = "Branch PBX",
    *,
    port: int = 5060,
    transport: str = "udp",
    channels: int = 1,
    **fields: Any,
) -> SipProfile:
    profile, _ = sip_profile_create(
        actor=Actor(user=owner),
        company=company,
        name=name,
        auth_method="ip",
        channels=channels,
        allowed_ips=[{"address": address, "port": port, "transport": transport}],
        **fields,
    )
    return profile


def populate_sip_profiles(company: Company, owner: Any) -> None:
    digest_profile(company, owner, name=f"Digest {company.pk}")
    ip_profile(company, owner, address=f"192.0.2.{company.pk % 250 + 1}", name=f"IP {company.pk}")
