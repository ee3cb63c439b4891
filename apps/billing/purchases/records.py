"""A purchase's own rules and rows, shared by card, PayPal and bank-wire purchases: what a
company may buy and how, starting a purchase, its status, and crediting it once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.charges.services import charges_settle_after_credit
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account
from apps.billing.models import CreditPurchase, LedgerTransaction
from apps.billing.money import CENTS, clean_amount, format_money
from apps.companies.models import Company
from apps.companies.selectors import PAYMENT_METHOD_LABELS, purchase_policy_for_company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

Method = CreditPurchase.Method
Status = CreditPurchase.Status
SYSTEM = Actor.system()


def method_label(method: str) -> str:
    return PAYMENT_METHOD_LABELS.get(method, method)


def purchase_amount(value: Any, *, company: Company) -> Decimal:
    """A purchase amount the company may buy: at least the minimum, at most its limit, in cents."""
    # Stripe charges whole cents; "25.500" is fine, "25.505" is not.
    amount = clean_amount(value, quantum=CENTS).quantize(CENTS)
    currency = company.currency
    minimum = settings.MINIMUM_PURCHASE
    if amount < minimum:
        raise ApplicationError(
            f"The minimum purchase is {format_money(minimum, currency)}.", field="amount", code="below_minimum"
        )
    policy = purchase_policy_for_company(company)
    if amount > policy.max_purchase:
        hint = "" if company.is_verified else " Verify your company to raise it."
        raise ApplicationError(
            f"Your limit is {format_money(policy.max_purchase, currency)} per purchase.{hint}",
            field="amount",
            code="above_limit",
        )
    return amount


def purchase_method(value: Any, *, company: Company) -> str:
    if value not in Method.values:
        raise ApplicationError("Choose card, PayPal or bank wire.", field="method")
    policy = purchase_policy_for_company(company)
    if value not in policy.payment_methods:
        if value == Method.BANK_WIRE and not company.is_verified:
            message = "Bank wire is available to verified companies. Verify your company to pay by bank wire."
        else:
            message = f"{method_label(value)} is not available to your company."
        raise ApplicationError(message, field="method", code="method_not_allowed")
    return str(value)


def purchase_start(
    *, actor: Actor, company: Company, amount: Decimal, fields: dict[str, Any], changes: dict[str, Any]
) -> CreditPurchase:
    """Create a pending purchase and its audit event (amount first, then `changes`)."""
    purchase = CreditPurchase.objects.create(
        company=company, amount=amount, currency=company.currency, created_by=actor.user, **fields
    )
    audit_record(
        actor=actor,
        action="credit.purchase_started",
        company=company,
        target=purchase,
        changes={
            "amount": {"before": None, "after": format_money(amount, company.currency)},
            **{name: {"before": None, "after": value} for name, value in changes.items()},
        },
    )
    return purchase


def purchase_mark(purchase: CreditPurchase, **fields: Any) -> None:
    CreditPurchase.objects.filter(pk=purchase.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(purchase, name, value)


def purchase_set_status(purchase: CreditPurchase, status: str, *, actor: Actor, failure_message: str = "") -> None:
    before = purchase.status
    purchase.status = status
    purchase.failure_message = failure_message
    purchase.save(update_fields=["status", "failure_message", "updated_at"])
    audit_record(
        actor=actor,
        action=f"credit.purchase_{status}",
        company=purchase.company,
        target=purchase,
        changes={"status": {"before": before, "after": status}},
    )


def purchase_credit(
    *, actor: Actor, purchase: CreditPurchase, received: Decimal, cash: str, key: str, description: str
) -> None:
    """Post the money received (cash account → company balance) once, under `key`, and mark
    the purchase credited."""
    txn, _ = ledger_post(
        actor=actor,
        key=key,
        kind=LedgerTransaction.Kind.PURCHASE,
        company=purchase.company,
        currency=purchase.currency,
        description=description,
        legs=[
            Leg(platform_account(cash, purchase.currency), -received),
            Leg(company_account(purchase.company), received),
        ],
    )
    _record_credit(purchase=purchase, txn=txn, received=received, actor=actor)
    charges_settle_after_credit(purchase.company)


def _record_credit(*, purchase: CreditPurchase, txn: LedgerTransaction, received: Decimal, actor: Actor) -> None:
    before = purchase.status
    purchase.status = Status.SUCCEEDED
    purchase.amount_received = received
    purchase.succeeded_at = timezone.now()
    purchase.credit_transaction = txn
    purchase.failure_message = ""
    purchase.save(
        update_fields=[
            "status",
            "amount_received",
            "succeeded_at",
            "credit_transaction",
            "failure_message",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action="credit.purchased",
        company=purchase.company,
        target=purchase,
        changes={
            "status": {"before": before, "after": Status.SUCCEEDED},
            "credited": {"before": None, "after": format_money(received, purchase.currency)},
        },
    )
