"""Buying credit by card against localstripe: credited once, whatever arrives first and however
often; declines, 3-D Secure, saved and unsaved cards, PayPal."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase, LedgerTransaction, SavedPaymentMethod, StripeEvent
from apps.billing.purchases import clients
from apps.billing.purchases.payment_methods import stripe_customer_id
from apps.billing.purchases.services import (
    purchase_card_form,
    purchase_charge_off_session,
    purchase_create,
    purchase_pay,
    purchase_sync,
)
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.billing.stripe_fixtures import LocalStripe, sign
from tests.helpers.races import run_concurrently

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]

DECLINED_AT_CHARGE = "4000000000000341"
DECLINED_AT_SETUP = "4000000000000002"
NEEDS_3DS = "4000002500003155"


def start(company: Any, owner: Any, amount: str = "25", *, save_card: bool = False) -> CreditPurchase:
    return purchase_create(
        actor=Actor(user=owner), company=company, amount=amount, method="card", save_card=save_card
    ).purchase


def pay_in_the_browser(localstripe: LocalStripe, purchase: CreditPurchase, number: str = "4242424242424242") -> str:
    """The pay page: Stripe.js sets the card up with Stripe. Returns the SetupIntent's id."""
    setup = purchase_card_form(purchase=purchase)
    response = localstripe.confirm_setup(setup.client_secret, number)
    assert response.status_code == 200, response.text
    return setup.id


def pay(localstripe: LocalStripe, purchase: CreditPurchase, owner: Any, number: str = "4242424242424242") -> Any:
    setup_intent = pay_in_the_browser(localstripe, purchase, number)
    return purchase_pay(actor=Actor(user=owner), purchase=purchase, setup_intent=setup_intent)


def deliver(client: Client, event: dict[str, Any]) -> Any:
    payload = json.dumps(event).encode()
    return client.post(
        "/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload)
    )


def credits_for(purchase: CreditPurchase) -> int:
    return LedgerTransaction.objects.filter(idempotency_key=f"stripe:{purchase.stripe_payment_intent}").count()


def test_a_card_payment_is_credited_once_when_the_retrieval_and_then_the_webhook_arrive(
    company, owner, localstripe
) -> None:
    purchase = start(company, owner)

    result = pay(localstripe, purchase, owner)
    response = deliver(Client(), localstripe.event_for(purchase.stripe_payment_intent, "payment_intent.succeeded"))

    assert result.purchase.status == CreditPurchase.Status.SUCCEEDED
    assert response.status_code == 200
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert company_balance(company) == Decimal("25")
    assert credits_for(purchase) == 1
    purchase.refresh_from_db()
    assert purchase.amount_received == Decimal("25")
    assert (purchase.card_brand, purchase.card_last4) == ("visa", "4242")


def test_a_card_payment_is_credited_once_when_the_webhook_comes_first_and_twice(company, owner, localstripe) -> None:
    purchase = start(company, owner)
    # Paid outside our pay step (an API client with Stripe.js): only Stripe knows.
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")
    event = localstripe.event_for(purchase.stripe_payment_intent, "payment_intent.succeeded")

    first, second = deliver(Client(), event), deliver(Client(), event)
    synced, intent = purchase_sync(purchase=CreditPurchase.objects.get(pk=purchase.pk))

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicate"] is True
    assert StripeEvent.objects.count() == 1
    assert intent is None, "a credited purchase is not asked about again"
    assert synced.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("25")
    assert credits_for(purchase) == 1


def test_a_retrieval_after_the_payment_credits_and_a_late_webhook_changes_nothing(company, owner, localstripe) -> None:
    purchase = start(company, owner, "40")
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")

    synced, intent = purchase_sync(purchase=purchase)
    again, _ = purchase_sync(purchase=synced)
    deliver(Client(), localstripe.event_for(purchase.stripe_payment_intent, "payment_intent.succeeded"))

    assert intent is not None
    assert intent.status == "succeeded"
    assert again.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("40")
    assert credits_for(purchase) == 1


@pytest.mark.django_db(transaction=True)
def test_webhooks_and_retrievals_racing_credit_once(company, owner, localstripe) -> None:
    purchase = start(company, owner, "30")
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")
    event = localstripe.event_for(purchase.stripe_payment_intent, "payment_intent.succeeded")

    def webhook() -> None:
        assert deliver(Client(), event).status_code == 200

    def retrieval() -> None:
        purchase_sync(purchase=CreditPurchase.objects.get(pk=purchase.pk))

    run_concurrently(*[webhook if n % 2 else retrieval for n in range(8)])

    assert company_balance(company) == Decimal("30")
    assert credits_for(purchase) == 1
    assert StripeEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_a_signed_webhook_that_credits_once(company, owner, stripe_webhooks) -> None:
    purchase = start(company, owner, "15")

    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")
    # Events of earlier tests' intents may arrive too (localstripe sends each a second late).
    ours = StripeEvent.objects.filter(payload__data__object__id=purchase.stripe_payment_intent)
    deadline = time.monotonic() + 15
    while not ours.filter(status=StripeEvent.Status.PROCESSED).exists():
        assert time.monotonic() < deadline, "no webhook arrived from localstripe"
        time.sleep(0.1)
    purchase_sync(purchase=CreditPurchase.objects.get(pk=purchase.pk))

    event = ours.get()
    assert event.type == "payment_intent.succeeded"
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("15")
    assert credits_for(purchase) == 1


def test_a_card_declined_when_charged_fails_the_purchase_and_credits_nothing(company, owner, localstripe) -> None:
    purchase = start(company, owner)

    result = pay(localstripe, purchase, owner, DECLINED_AT_CHARGE)
    deliver(Client(), localstripe.event_for(purchase.stripe_payment_intent, "payment_intent.payment_failed"))

    assert result.purchase.status == CreditPurchase.Status.FAILED
    assert result.purchase.failure_message == "Your card was declined."
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.FAILED
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert company_balance(company) == Decimal("0")
    assert LedgerTransaction.objects.count() == 0


def test_a_card_refused_by_the_card_form_never_reaches_the_payment(company, owner, localstripe) -> None:
    purchase = start(company, owner)
    setup = purchase_card_form(purchase=purchase)

    refused = localstripe.confirm_setup(setup.client_secret, DECLINED_AT_SETUP)
    with pytest.raises(ApplicationError, match="not accepted"):
        purchase_pay(actor=Actor(user=owner), purchase=purchase, setup_intent=setup.id)

    assert refused.status_code == 402
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.PENDING
    assert purchase_card_form(purchase=purchase).id != setup.id, "the used form is replaced"


def test_a_card_that_asks_for_3d_secure_is_credited_after_the_person_confirms(company, owner, localstripe) -> None:
    purchase = start(company, owner)
    setup = purchase_card_form(purchase=purchase)
    assert localstripe.confirm_setup(setup.client_secret, NEEDS_3DS).json()["status"] == "requires_action"
    assert localstripe.complete_setup_authentication(setup.client_secret).json()["status"] == "succeeded"

    result = purchase_pay(actor=Actor(user=owner), purchase=purchase, setup_intent=setup.id)
    assert result.requires_action
    assert result.purchase.status == CreditPurchase.Status.PENDING
    assert localstripe.authenticate_payment(result.client_secret).status_code == 200
    synced, _ = purchase_sync(purchase=result.purchase)

    assert synced.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("25")


def test_a_saved_card_keeps_only_brand_last_four_and_expiry(company, owner, localstripe) -> None:
    purchase = start(company, owner, save_card=True)

    pay(localstripe, purchase, owner)

    card = SavedPaymentMethod.objects.get(company=company)
    assert (card.brand, card.last4, card.exp_month, card.exp_year, card.is_default) == ("visa", "4242", 12, 2030, True)
    attached = clients.payment_methods_list(customer=stripe_customer_id(company))
    assert [c.id for c in attached] == [card.stripe_id], "attached to the company's customer for later use"


def test_a_card_not_to_be_saved_is_detached_after_the_payment(company, owner, localstripe) -> None:
    purchase = start(company, owner)

    pay(localstripe, purchase, owner)

    assert not SavedPaymentMethod.objects.exists()
    assert clients.payment_methods_list(customer=stripe_customer_id(company)) == []


def test_a_saved_card_pays_on_the_server_without_the_card_form(company, owner, localstripe) -> None:
    pay(localstripe, start(company, owner, save_card=True), owner)
    card = SavedPaymentMethod.objects.get(company=company)

    result = purchase_create(actor=Actor(user=owner), company=company, amount="60", method="card", saved_card=card)

    assert result.purchase.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("85")


def test_a_paypal_purchase_is_a_paypal_payment_intent_credited_by_its_webhook(
    company, owner, localstripe, monkeypatch
) -> None:
    """localstripe cannot take PayPal payments: the intent is created as for the real API, and the
    payment is reported by a (signed) webhook as Stripe would send it after PayPal's approval."""
    asked: list[dict[str, Any]] = []
    real_create = clients.payment_intent_create

    def spy(**kwargs: Any) -> clients.PaymentIntentInfo:
        asked.append(kwargs)
        return real_create(**kwargs)

    monkeypatch.setattr(clients, "payment_intent_create", spy)
    result = purchase_create(actor=Actor(user=owner), company=company, amount="20", method="paypal")
    intent_id = result.purchase.stripe_payment_intent
    event = {
        "id": "evt_paypal_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": 2000,
                "amount_received": 2000,
                "currency": "gbp",
                "status": "succeeded",
                "payment_method_types": ["paypal"],
                "metadata": {"purchase": str(result.purchase.public_id)},
            }
        },
    }

    response = deliver(Client(), event)

    assert [a["method"] for a in asked] == ["paypal"]
    assert result.client_secret.startswith(f"{intent_id}_secret_")
    assert response.status_code == 200
    assert CreditPurchase.objects.get(pk=result.purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("20")


def _saved(company: Any, payment_method: str) -> SavedPaymentMethod:
    card = clients.payment_method_attach(payment_method, customer=stripe_customer_id(company))
    return SavedPaymentMethod.objects.create(
        company=company, stripe_id=card.id, brand=card.brand, last4=card.last4, exp_month=12, exp_year=2030
    )


def test_a_saved_card_is_charged_off_session_and_credited(company, owner) -> None:
    card = _saved(company, "pm_card_visa")

    purchase = purchase_charge_off_session(
        actor=Actor.system(), company=company, amount="50", card=card, idempotency_key="recharge:test:1"
    )

    assert purchase.status == CreditPurchase.Status.SUCCEEDED
    assert (purchase.card_brand, purchase.card_last4) == ("visa", "4242")
    assert company_balance(company) == Decimal("50")
    assert credits_for(purchase) == 1


def test_a_saved_card_that_fails_when_charged_off_session_fails_the_purchase(company, owner) -> None:
    card = _saved(company, "pm_card_chargeCustomerFail")  # 4000000000000341: attaches, then declines

    purchase = purchase_charge_off_session(
        actor=Actor.system(), company=company, amount="50", card=card, idempotency_key="recharge:test:2"
    )

    assert purchase.status == CreditPurchase.Status.FAILED
    assert purchase.failure_message == "Your card was declined."
    assert company_balance(company) == Decimal("0")
