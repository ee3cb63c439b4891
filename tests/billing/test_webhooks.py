"""The Stripe webhook: signature checks, the event inbox, duplicates and events out of order."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase, LedgerTransaction, StripeEvent
from apps.billing.purchases import clients, webhooks
from apps.billing.purchases.services import purchase_create
from apps.core.actor import Actor
from tests.billing.stripe_fixtures import WEBHOOK_SECRET, sign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]


def intent_event(purchase: CreditPurchase, event_type: str, status: str, *, event_id: str, **extra: Any) -> bytes:
    obj = {
        "id": purchase.stripe_payment_intent,
        "object": "payment_intent",
        "amount": int(purchase.amount * 100),
        "currency": purchase.currency.lower(),
        "status": status,
        "metadata": {"purchase": str(purchase.public_id)},
        **extra,
    }
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


def post(payload: bytes, signature: str | None) -> Any:
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return Client().post("/stripe/webhook/", data=payload, content_type="application/json", **headers)


@pytest.fixture
def purchase(company: Any, owner: Any) -> CreditPurchase:
    return purchase_create(actor=Actor(user=owner), company=company, amount="25", method="card").purchase


def succeeded(purchase: CreditPurchase, event_id: str = "evt_ok") -> bytes:
    return intent_event(purchase, "payment_intent.succeeded", "succeeded", event_id=event_id, amount_received=2500)


@pytest.mark.parametrize("case", ["wrong secret", "altered body", "stale timestamp", "garbage", "no signature"])
def test_a_webhook_that_fails_the_signature_check_is_refused_and_nothing_is_stored(purchase, case) -> None:
    body = succeeded(purchase)
    sent, header = body, sign(body)
    if case == "wrong secret":
        header = sign(body, secret="whsec_someone_else")
    elif case == "altered body":
        sent = body.replace(b'"amount": 2500', b'"amount": 9500')
    elif case == "stale timestamp":
        header = sign(body, timestamp=int(time.time()) - 600)
    elif case == "garbage":
        header = "t=1,v1=nonsense"
    else:
        header = None

    response = post(sent, header)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.PENDING
    assert company_balance(purchase.company) == Decimal("0")


def test_webhooks_are_refused_when_no_secret_is_configured(purchase, settings) -> None:
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = succeeded(purchase)

    response = post(body, sign(body, secret=""))

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_event_is_stored_once_and_a_redelivery_changes_nothing(purchase) -> None:
    body = succeeded(purchase)

    first, second = post(body, sign(body)), post(body, sign(body))

    event = StripeEvent.objects.get()
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"received": True, "duplicate": True}
    assert (event.event_id, event.type, event.status, event.attempts) == (
        "evt_ok",
        "payment_intent.succeeded",
        StripeEvent.Status.PROCESSED,
        1,
    )
    assert event.payload["data"]["object"]["id"] == purchase.stripe_payment_intent
    assert event.processed_at is not None
    assert company_balance(purchase.company) == Decimal("25")
    assert LedgerTransaction.objects.count() == 1


def test_the_same_payment_in_two_different_events_is_credited_once(purchase) -> None:
    for event_id in ("evt_a", "evt_b"):
        body = succeeded(purchase, event_id)
        assert post(body, sign(body)).status_code == 200

    assert StripeEvent.objects.filter(status=StripeEvent.Status.PROCESSED).count() == 2
    assert company_balance(purchase.company) == Decimal("25")


@pytest.mark.parametrize("late", ["payment_intent.payment_failed", "payment_intent.canceled"])
def test_a_failure_or_cancelation_arriving_after_success_changes_nothing(purchase, late) -> None:
    status = "canceled" if late.endswith("canceled") else "requires_payment_method"
    ok, stale = (
        succeeded(purchase),
        intent_event(
            purchase, late, status, event_id="evt_late", last_payment_error={"message": "Your card was declined."}
        ),
    )

    post(ok, sign(ok))
    response = post(stale, sign(stale))

    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id="evt_late").status == StripeEvent.Status.PROCESSED
    purchase.refresh_from_db()
    assert purchase.status == CreditPurchase.Status.SUCCEEDED
    assert purchase.failure_message == ""
    assert company_balance(purchase.company) == Decimal("25")


def test_a_success_arriving_after_a_failure_still_credits(purchase) -> None:
    """A declined attempt, then another card on the same intent: the money arrived, it counts."""
    failed = intent_event(
        purchase,
        "payment_intent.payment_failed",
        "requires_payment_method",
        event_id="evt_failed",
        last_payment_error={"message": "Your card was declined."},
    )
    ok = succeeded(purchase)

    post(failed, sign(failed))
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.FAILED
    post(ok, sign(ok))

    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(purchase.company) == Decimal("25")


def test_a_payment_of_another_amount_is_not_credited_and_the_event_is_kept_as_failed(purchase) -> None:
    body = intent_event(purchase, "payment_intent.succeeded", "succeeded", event_id="evt_odd", amount_received=100)

    response = post(body, sign(body))

    event = StripeEvent.objects.get()
    assert response.status_code == 500, "Stripe is asked to deliver it again"
    assert event.status == StripeEvent.Status.FAILED
    assert "PaymentMismatch" in event.error
    assert company_balance(purchase.company) == Decimal("0")


def test_a_failed_event_is_handled_again_when_stripe_redelivers_it(purchase, monkeypatch) -> None:
    calls = []

    def flaky(payload: dict[str, Any]) -> None:
        calls.append(payload["id"])
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        webhooks._payment_intent(payload)

    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", flaky)
    body = succeeded(purchase)

    first, second, third = post(body, sign(body)), post(body, sign(body)), post(body, sign(body))

    event = StripeEvent.objects.get()
    assert [first.status_code, second.status_code, third.status_code] == [500, 200, 200]
    assert third.json()["duplicate"] is True
    assert (event.status, event.attempts, event.error) == (StripeEvent.Status.PROCESSED, 2, "")
    assert len(calls) == 2
    assert company_balance(purchase.company) == Decimal("25")


def test_the_periodic_retry_handles_failed_events(purchase, monkeypatch) -> None:
    body = succeeded(purchase)
    monkeypatch.setitem(
        webhooks.HANDLERS, "payment_intent.succeeded", lambda payload: (_ for _ in ()).throw(RuntimeError("down"))
    )
    post(body, sign(body))
    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", webhooks._payment_intent)
    StripeEvent.objects.update(received_at=timezone.now() - timezone.timedelta(minutes=30))

    counts = webhooks.stripe_events_retry(now=timezone.now())

    assert counts == {"retried": 1, "failed": 0}
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert company_balance(purchase.company) == Decimal("25")


def test_events_we_do_not_handle_and_unknown_payments_are_recorded_and_ignored(purchase) -> None:
    other = json.dumps(
        {"id": "evt_cust", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    ).encode()
    stranger = json.dumps(
        {
            "id": "evt_stranger",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": "pi_not_ours",
                    "object": "payment_intent",
                    "amount": 100,
                    "currency": "gbp",
                    "status": "succeeded",
                }
            },
        }
    ).encode()

    responses = [post(other, sign(other)), post(stranger, sign(stranger))]

    assert [r.status_code for r in responses] == [200, 200]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {StripeEvent.Status.PROCESSED}
    assert LedgerTransaction.objects.count() == 0


def test_the_verified_event_is_read_by_the_stripe_client(purchase) -> None:
    body = succeeded(purchase)

    event = clients.webhook_event(body, sign(body, secret=WEBHOOK_SECRET))

    assert (event.id, event.type, event.object["id"]) == (
        "evt_ok",
        "payment_intent.succeeded",
        purchase.stripe_payment_intent,
    )
