"""Reads about purchases and saved cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet

from apps.billing.models import CreditPurchase, SavedPaymentMethod, StripeEvent
from apps.billing.money import format_money
from apps.companies.models import Company
from apps.companies.selectors import PAYMENT_METHOD_LABELS, purchase_policy_for_company


def purchases_for(company: Company) -> QuerySet[CreditPurchase]:
    return CreditPurchase.objects.for_company(company).order_by("-created_at", "-id")


def saved_cards_for(company: Company) -> QuerySet[SavedPaymentMethod]:
    return SavedPaymentMethod.objects.for_company(company).order_by("-is_default", "-created_at", "-id")


def default_card_for(company: Company) -> SavedPaymentMethod | None:
    """The card auto-recharge charges, if the company saved one."""
    return SavedPaymentMethod.objects.for_company(company).filter(is_default=True).first()


def payment_method_choices(company: Company) -> list[dict[str, Any]]:
    """Every method, whether the company may use it, and why not."""
    policy = purchase_policy_for_company(company)
    choices = []
    for value, label in CreditPurchase.Method.choices:
        allowed = value in policy.payment_methods
        reason = ""
        if not allowed:
            reason = "for verified companies" if value == "bank_wire" and not company.is_verified else "not offered"
        choices.append(
            {"value": value, "label": PAYMENT_METHOD_LABELS.get(value, label), "allowed": allowed, "reason": reason}
        )
    return choices


def wire_instructions(purchase: CreditPurchase) -> str:
    """What the company needs to make the transfer: the bank details, amount and reference."""
    return (
        f"{settings.BANK_WIRE_INSTRUCTIONS}\n"
        f"Amount: {format_money(purchase.amount, purchase.currency)}\n"
        f"Reference: {purchase.wire_reference}"
    )


def stripe_is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_PUBLISHABLE_KEY)


@dataclass(frozen=True)
class WebhookInbox:
    received: int  # stored, not handled yet (or its handling was interrupted)
    failed: int  # handled and failed: the error is kept, Stripe or the reconcile task retries
    oldest_at: datetime | None  # when the oldest of them came in


def stripe_events_unprocessed() -> WebhookInbox:
    """The Stripe webhook inbox's events not processed yet. Queries: 1 (the status index)."""
    figures = StripeEvent.objects.exclude(status=StripeEvent.Status.PROCESSED).aggregate(
        received=Count("id", filter=Q(status=StripeEvent.Status.RECEIVED)),
        failed=Count("id", filter=Q(status=StripeEvent.Status.FAILED)),
        oldest_at=Min("received_at"),
    )
    return WebhookInbox(**figures)
