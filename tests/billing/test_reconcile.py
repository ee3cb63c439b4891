"""The periodic reconciliation: payments nobody told us about are credited, abandoned ones canceled."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase
from apps.billing.purchases import clients
from apps.billing.purchases.services import (
    RECONCILE_GRACE,
    purchase_apply_intent,
    purchase_create,
    purchases_reconcile,
)
from apps.billing.tasks import reconcile_credit_purchases
from apps.core.actor import Actor

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]


def started(company: Any, owner: Any, *, minutes_ago: int, amount: str = "25") -> CreditPurchase:
    purchase = purchase_create(actor=Actor(user=owner), company=company, amount=amount, method="card").purchase
    CreditPurchase.objects.filter(pk=purchase.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return CreditPurchase.objects.get(pk=purchase.pk)


def test_a_payment_no_webhook_reported_is_credited_by_the_reconciliation(company, owner) -> None:
    purchase = started(company, owner, minutes_ago=30)
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")

    counts = reconcile_credit_purchases()

    assert counts is not None
    assert counts["credited"] == 1
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("25")


def test_an_unpaid_purchase_past_the_expiry_is_canceled_at_stripe_too(company, owner, settings) -> None:
    purchase = started(company, owner, minutes_ago=settings.CREDIT_PURCHASE_EXPIRY_HOURS * 60 + 5)

    counts = purchases_reconcile(now=timezone.now())

    assert counts["canceled"] == 1
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.CANCELED
    assert clients.payment_intent_retrieve(purchase.stripe_payment_intent).status == "canceled"


def test_a_purchase_the_browser_may_still_be_paying_is_left_alone(company, owner) -> None:
    purchase = started(company, owner, minutes_ago=2)

    counts = purchases_reconcile(now=timezone.now())

    assert counts["checked"] == 0
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.PENDING


def test_a_purchase_whose_intent_was_never_stored_is_canceled_after_the_expiry(company, owner, settings) -> None:
    purchase = started(company, owner, minutes_ago=settings.CREDIT_PURCHASE_EXPIRY_HOURS * 60 + 5)
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=None)

    purchases_reconcile(now=timezone.now())

    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.CANCELED


def test_a_purchase_interrupted_before_its_intent_was_stored_is_canceled_once_past_the_grace(company, owner) -> None:
    """The intent is created the moment the row is: one still missing ten minutes on means the
    request died in between, and no client was given a secret to pay it with."""
    purchase = started(company, owner, minutes_ago=int(RECONCILE_GRACE.total_seconds() // 60) + 1)
    intent_id = purchase.stripe_payment_intent
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=None)
    recent = started(company, owner, minutes_ago=1, amount="30")
    CreditPurchase.objects.filter(pk=recent.pk).update(stripe_payment_intent=None)

    counts = purchases_reconcile(now=timezone.now())

    assert counts["canceled"] == 1
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.CANCELED
    assert CreditPurchase.objects.get(pk=recent.pk).status == CreditPurchase.Status.PENDING
    # Should its intent be paid all the same, the money is credited, never kept.
    intent = clients.payment_intent_confirm(intent_id, payment_method="pm_card_visa")
    applied = purchase_apply_intent(intent=intent)
    assert applied is not None
    assert applied.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("25")


def test_an_intent_whose_id_was_never_stored_is_matched_by_its_metadata(company, owner) -> None:
    """The process died between creating the intent and storing its id; then it was paid."""
    purchase = started(company, owner, minutes_ago=1)
    intent_id = purchase.stripe_payment_intent
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=None)
    intent = clients.payment_intent_confirm(intent_id, payment_method="pm_card_visa")

    applied = purchase_apply_intent(intent=intent)

    assert applied is not None
    assert (applied.pk, applied.stripe_payment_intent, applied.status) == (
        purchase.pk,
        intent_id,
        CreditPurchase.Status.SUCCEEDED,
    )
    assert company_balance(company) == Decimal("25")
