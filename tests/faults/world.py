"""The fault test's data, made through the app's services in the stack's own database:

    DJANGO_SETTINGS_MODULE=skypemanager.settings ... python -m tests.faults.world

A verified company with an owner, an admin API key, a card saved at (local) Stripe as the
default, three SIP profiles, company credit and the company auto-recharge on. Prints one JSON
line: what the load and the checks need.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal


def main() -> None:
    import django

    django.setup()

    from apps.billing.purchases import clients, payment_methods
    from apps.billing.recharge import company as company_recharge
    from apps.companies.models import Company, Role, VerificationStatus
    from apps.core.actor import Actor
    from apps.sip_profiles.services import sip_profile_create
    from tests.factories import CompanyFactory, api_key_for, grant, member

    settings = json.loads(os.environ["FAULT_WORLD"])
    company: Company = CompanyFactory(name="Fault Test Ltd", verification_status=VerificationStatus.VERIFIED)
    owner = member(company, Role.OWNER)
    actor = Actor(user=owner)
    _key, secret = api_key_for(company, Role.ADMIN, creator=owner)
    grant(company, settings["credit"], key="fault-test:opening-credit")
    profiles = []
    for n in range(settings["profiles"]):
        profile, _password = sip_profile_create(
            actor=actor, company=company, name=f"Fault PBX {n + 1}", auth_method="registration", channels=1
        )
        profiles.append(str(profile.public_id))
    card_info = clients.payment_method_attach("pm_card_visa", customer=payment_methods.stripe_customer_id(company))
    card = payment_methods.payment_method_record(actor=actor, company=company, card=card_info)
    auto = company_recharge.auto_recharge_update(
        actor=actor,
        company=company,
        enabled=True,
        amount=settings["recharge_amount"],
        threshold=settings["recharge_threshold"],
        monthly_limit=settings["recharge_limit"],
    )
    assert auto.enabled
    assert card.is_default
    json.dump(
        {
            "company_id": company.pk,
            "company": str(company.public_id),
            "api_key": secret,
            "profiles": profiles,
            "card": str(card.public_id),
            "threshold": str(Decimal(settings["recharge_threshold"])),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
