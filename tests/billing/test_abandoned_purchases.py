"""Purchases nobody pays (issue 13, item 7): the customer cancels them, in the portal or the
API, and they expire on their own; a payment that wins the race is credited, not lost."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase
from apps.billing.purchases import clients
from apps.billing.purchases.services import purchase_create, purchases_reconcile
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.companies.models import Role
from apps.core.actor import Actor
from tests.billing.factories import wire_purchase
from tests.factories import member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]


def card_purchase(company: Any, owner: Any, amount: str = "25") -> CreditPurchase:
    return purchase_create(actor=Actor(user=owner), company=company, amount=amount, method="card").purchase


def test_the_customer_cancels_a_card_purchase_in_the_api_and_stripe_can_no_longer_take_it(
    owner_api, company, owner
) -> None:
    purchase = card_purchase(company, owner)

    response = owner_api.post(f"/api/v1/credit/purchases/{purchase.public_id}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "canceled"
    assert clients.payment_intent_retrieve(purchase.stripe_payment_intent).status == "canceled"
    assert AuditEvent.objects.filter(action="credit.purchase_canceled", object_id=str(purchase.public_id)).exists()
    again = owner_api.post(f"/api/v1/credit/purchases/{purchase.public_id}/cancel/")
    assert again.status_code == 409
    assert again.json()["code"] == "not_cancellable"


def test_a_payment_stripe_took_before_the_cancel_is_credited_once_and_the_cancel_refused(
    owner_api, company, owner
) -> None:
    purchase = card_purchase(company, owner, amount="30")
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")

    response = owner_api.post(f"/api/v1/credit/purchases/{purchase.public_id}/cancel/")

    assert response.status_code == 409
    assert response.json()["code"] == "already_paid"
    assert "30.00 GBP was added to your balance" in response.json()["detail"]
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("30")


def test_the_owner_cancels_a_wire_on_its_page_and_a_transfer_arriving_later_is_still_credited(company, owner) -> None:
    purchase = wire_purchase(company, owner, amount="500")
    web = Client()
    web.force_login(owner)
    page = web.get(f"/credit/purchases/{purchase.public_id}/").content.decode()
    assert 'id="cancel-purchase"' in page
    assert "Cancel this purchase of 500.00 GBP" in page

    cancelled = web.post(f"/credit/purchases/{purchase.public_id}/cancel/")
    assert cancelled.status_code == 302
    assert cancelled["Location"] == f"/credit/purchases/{purchase.public_id}/"
    html = web.get(cancelled["Location"]).content.decode()
    assert "The purchase of 500.00 GBP was cancelled." in html
    assert 'id="cancel-purchase"' not in html
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.CANCELED
    # Sent again (a reload that re-posts): nothing more happens, and it says why.
    repeat = web.post(f"/credit/purchases/{purchase.public_id}/cancel/", follow=True).content.decode()
    assert "only one awaiting payment can be cancelled" in repeat

    purchase_confirm_wire(actor=Actor.system(), purchase=purchase, amount_received="500")
    assert company_balance(company) == Decimal("500")


def test_a_viewer_cannot_cancel(company, owner) -> None:
    purchase = wire_purchase(company, owner)
    viewer = Client()
    viewer.force_login(member(company, Role.VIEWER))

    assert 'id="cancel-purchase"' not in viewer.get(f"/credit/purchases/{purchase.public_id}/").content.decode()
    assert viewer.post(f"/credit/purchases/{purchase.public_id}/cancel/").status_code == 403
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.PENDING


def test_a_wire_nobody_sent_expires_after_the_set_days_and_a_recent_one_stays(company, owner, settings) -> None:
    settings.WIRE_PURCHASE_EXPIRY_DAYS = 30
    old, recent = wire_purchase(company, owner), wire_purchase(company, owner)
    CreditPurchase.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30, minutes=1))
    CreditPurchase.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=29))

    counts = purchases_reconcile(now=timezone.now())

    assert counts["canceled"] == 1
    assert CreditPurchase.objects.get(pk=old.pk).status == CreditPurchase.Status.CANCELED
    assert CreditPurchase.objects.get(pk=recent.pk).status == CreditPurchase.Status.PENDING
