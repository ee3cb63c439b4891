"""Billing rows for tests that need a company with purchase history and a saved card.

`wire_purchase` and `saved_card` make rows directly (no Stripe server needed); `populate_billing`
is service-driven: staff confirm the wire through purchase_confirm_wire, so it is in the ledger."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from apps.billing.models import CreditPurchase, SavedPaymentMethod
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.companies.models import Company
from apps.core.actor import Actor

_serial = itertools.count(1)


def wire_purchase(company: Company, owner: Any, amount: str = "50.00") -> CreditPurchase:
    """A pending bank-wire purchase, made directly (the policy allows wires to verified companies only)."""
    n = next(_serial)
    return CreditPurchase.objects.create(
        company=company,
        amount=Decimal(amount),
        currency=company.currency,
        method=CreditPurchase.Method.BANK_WIRE,
        wire_reference=f"SM-TEST-{n:04d}",
        created_by=owner,
    )


def saved_card(company: Company, owner: Any, *, last4: str = "4242", is_default: bool = True) -> SavedPaymentMethod:
    """A saved card row; its Stripe id is made up (no Stripe call is made for it)."""
    return SavedPaymentMethod.objects.create(
        company=company,
        stripe_id=f"pm_test_{company.public_id.hex[:12]}_{next(_serial)}",
        brand="visa",
        last4=last4,
        exp_month=12,
        exp_year=2030,
        is_default=is_default,
        created_by=owner,
    )


def populate_billing(company: Company, owner: Any) -> CreditPurchase:
    """A paid purchase (a wire confirmed by staff, through the service, so it is in the ledger)
    and a saved card, for tenant-isolation tests. Needs no Stripe server."""
    purchase = purchase_confirm_wire(
        actor=Actor(user=owner), purchase=wire_purchase(company, owner), amount_received="50.00"
    )
    saved_card(company, owner, is_default=not SavedPaymentMethod.objects.filter(company=company).exists())
    return purchase
