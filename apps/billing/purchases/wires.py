"""Bank wires: a pending purchase with a reference for the transfer, credited with what arrived
when staff confirm it, once (ledger key `wire:<purchase>`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from apps.billing.models import CreditPurchase, LedgerAccount
from apps.billing.money import CENTS, clean_amount, format_money
from apps.billing.purchases.records import Method, purchase_credit, purchase_start
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict

# Unambiguous characters for wire references: no 0/O, 1/I/L.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _wire_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"SM-{chars[:4]}-{chars[4:]}"


def purchase_create_wire(
    *, actor: Actor, company: Company, amount: Decimal, on_created: Callable[[CreditPurchase], None] | None
) -> CreditPurchase:
    for _ in range(5):
        try:
            with transaction.atomic():
                reference = _wire_reference()
                purchase = purchase_start(
                    actor=actor,
                    company=company,
                    amount=amount,
                    fields={"method": Method.BANK_WIRE, "wire_reference": reference},
                    changes={"method": Method.BANK_WIRE, "wire_reference": reference},
                )
                if on_created is not None:
                    on_created(purchase)
                return purchase
        except IntegrityError as error:
            # 31^8 references make a clash rare; draw another one. Any other error is real.
            if "wire_reference" not in str(error):
                raise
    raise ApplicationError("Could not create a unique wire reference. Please try again.")


def purchase_confirm_wire(*, actor: Actor, purchase: CreditPurchase, amount_received: Any) -> CreditPurchase:
    """Staff saw the wire arrive: credit what arrived (which may differ from what was asked), once."""
    received = clean_amount(amount_received, field="amount_received", quantum=CENTS).quantize(CENTS)
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.method != Method.BANK_WIRE:
            raise ApplicationError("Only bank-wire purchases are confirmed by staff.", code="not_a_wire")
        if purchase.status in CreditPurchase.CREDITED:
            raise Conflict(
                f"Wire {purchase.wire_reference} was already confirmed: "
                f"{format_money(purchase.amount_received or Decimal(0), purchase.currency)} credited.",
                code="already_confirmed",
            )
        company = purchase.company
        purchase_credit(
            actor=actor,
            purchase=purchase,
            received=received,
            cash=LedgerAccount.Kind.BANK_CASH,
            key=f"wire:{purchase.public_id}",
            description=f"Credit bought by bank wire {purchase.wire_reference}",
        )
        notice_create(
            company=company,
            kind="credit_wire_received",
            subject=f"Bank wire {purchase.wire_reference} received: {format_money(received, purchase.currency)} added",
            level=Notice.Level.INFO,
            message=f"We received your bank wire {purchase.wire_reference}: "
            f"{format_money(received, purchase.currency)} was added to your balance.",
        )
    return purchase
