"""credit/purchases/ and payment-methods/ in the API: purchase rules, Idempotency-Key, roles,
saved cards, receipts, and the query counts of the lists."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase, IdempotentRequest, SavedPaymentMethod
from apps.companies.models import Role, VerificationStatus
from tests.billing.factories import populate_billing, saved_card, wire_purchase
from tests.billing.stripe_fixtures import LocalStripe
from tests.conftest import client_as
from tests.factories import CompanyFactory, api_key_for, member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]

URL = "/api/v1/credit/purchases/"


def buy(api: Any, key: str | None = None, **data: Any) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(URL, {"amount": "25", "method": "card", **data}, format="json", **headers)


def verify(company: Any) -> None:
    company.verification_status = VerificationStatus.VERIFIED
    company.save(update_fields=["verification_status"])


def test_a_card_purchase_returns_the_client_secret_to_confirm_with_stripe_js(owner_api, company) -> None:
    response = buy(owner_api)

    body = response.json()
    assert response.status_code == 201
    purchase = CreditPurchase.objects.get(public_id=body["id"])
    assert body["status"] == "pending"
    assert body["client_secret"].startswith(f"{purchase.stripe_payment_intent}_secret_")
    assert body["requires_action"] is True
    assert (body["amount"], body["currency"], body["method"]) == ("25.00", "GBP", "card")
    assert body["receipt_url"] is None


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        ("9.99", "below_minimum", "The minimum purchase is 10.00 GBP."),
        ("100.01", "above_limit", "Your limit is 100.00 GBP per purchase. Verify your company to raise it."),
        ("10.001", "invalid", "Use at most 2 decimal places."),
        ("ten", "invalid", "Enter an amount such as 25 or 25.50."),
    ],
)
def test_amounts_outside_the_rules_are_field_errors(owner_api, amount, code, message) -> None:
    response = buy(owner_api, amount=amount)

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": code, "errors": {"amount": [message]}}
    assert not CreditPurchase.objects.exists()


def test_the_limit_of_a_verified_company_and_its_staff_override_apply(owner_api, company) -> None:
    verify(company)
    assert buy(owner_api, amount="5000").status_code == 201
    assert buy(owner_api, amount="5000.01").json()["code"] == "above_limit"

    company.purchase_limit_override = Decimal("250")
    company.save(update_fields=["purchase_limit_override"])

    assert buy(owner_api, amount="250.01").json()["errors"]["amount"] == ["Your limit is 250.00 GBP per purchase."]


def test_bank_wire_is_refused_to_an_unverified_company(owner_api) -> None:
    response = buy(owner_api, method="bank_wire")

    assert response.status_code == 400
    assert response.json()["code"] == "method_not_allowed"
    assert response.json()["errors"]["method"] == [
        "Bank wire is available to verified companies. Verify your company to pay by bank wire."
    ]


def test_a_verified_company_gets_a_wire_reference_and_the_instructions(owner_api, company, settings) -> None:
    settings.BANK_WIRE_INSTRUCTIONS = "IBAN: GB00 TEST 0000 0000 0000 00"
    verify(company)

    body = buy(owner_api, method="bank_wire", amount="1200").json()

    assert body["status"] == "pending"
    assert body["client_secret"] is None
    assert body["wire_reference"].startswith("SM-")
    assert len(body["wire_reference"]) == len("SM-7K3Q-9XPA")
    assert "IBAN: GB00 TEST" in body["wire_instructions"]
    assert f"Reference: {body['wire_reference']}" in body["wire_instructions"]
    assert "Amount: 1,200.00 GBP" in body["wire_instructions"]


def test_a_payment_method_the_policy_does_not_offer_is_refused(owner_api) -> None:
    from apps.companies.models import PurchasePolicy

    PurchasePolicy.objects.filter(tier="unverified").update(allow_paypal=False)

    response = buy(owner_api, method="paypal")

    assert response.json()["errors"] == {"method": ["PayPal is not available to your company."]}


def test_a_repeated_idempotency_key_returns_the_first_result(owner_api) -> None:
    first = buy(owner_api, key="order-42")
    second = buy(owner_api, key="order-42")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert CreditPurchase.objects.count() == 1


def test_the_same_idempotency_key_with_other_parameters_is_a_conflict(owner_api) -> None:
    buy(owner_api, key="order-43")

    response = buy(owner_api, key="order-43", amount="26")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert CreditPurchase.objects.count() == 1


def test_a_refused_request_is_replayed_too(owner_api) -> None:
    first = buy(owner_api, key="order-44", amount="5")
    second = buy(owner_api, key="order-44", amount="5")

    assert (first.status_code, second.status_code) == (400, 400)
    assert second.json() == first.json()


def test_an_idempotency_key_is_per_company(owner_api, other_company) -> None:
    other_owner = member(other_company, Role.OWNER)

    buy(owner_api, key="shared")
    theirs = buy(client_as(other_owner), key="shared", amount="30")

    assert theirs.status_code == 201
    assert CreditPurchase.objects.count() == 2


def test_a_key_still_being_processed_is_a_conflict_until_it_is_stale(owner_api, company) -> None:
    buy(owner_api, key="order-45")
    row = IdempotentRequest.objects.get()
    IdempotentRequest.objects.filter(pk=row.pk).update(response_status=None, response_body=None)

    busy = buy(owner_api, key="order-45")
    IdempotentRequest.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timezone.timedelta(minutes=6))
    taken_over = buy(owner_api, key="order-45")

    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert taken_over.status_code == 201


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "ключ"])
def test_a_malformed_idempotency_key_is_refused(owner_api, key) -> None:
    response = buy(owner_api, key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


def test_a_viewer_cannot_buy_but_sees_the_purchases(company, owner) -> None:
    viewer = client_as(member(company, Role.VIEWER))
    wire_purchase(company, owner)

    assert buy(viewer).status_code == 403
    assert viewer.get(URL).json()["count"] == 1


def test_a_billing_api_key_can_buy(company) -> None:
    from rest_framework.test import APIClient

    _, secret = api_key_for(company, Role.BILLING)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert buy(client).status_code == 201


def test_paying_with_a_saved_card_through_the_api_credits_at_once(owner_api, company, owner, localstripe) -> None:
    from apps.billing.purchases import clients
    from apps.billing.purchases.payment_methods import stripe_customer_id

    card = clients.payment_method_attach("pm_card_visa", customer=stripe_customer_id(company))
    saved = SavedPaymentMethod.objects.create(
        company=company, stripe_id=card.id, brand=card.brand, last4=card.last4, exp_month=12, exp_year=2030
    )

    response = buy(owner_api, key="saved-1", payment_method=str(saved.public_id))

    assert response.status_code == 201
    assert response.json()["status"] == "succeeded"
    assert response.json()["card"] == {"brand": "visa", "last4": "4242"}
    assert response.json()["receipt_url"].endswith("/receipt/")
    assert company_balance(company) == Decimal("25")


def test_a_saved_card_of_another_company_cannot_be_charged(owner_api, other_company) -> None:
    theirs = saved_card(other_company, member(other_company, Role.OWNER))

    response = buy(owner_api, payment_method=str(theirs.public_id))

    assert response.status_code == 400
    assert response.json()["errors"] == {"payment_method": ["No such saved card."]}


def test_the_detail_asks_stripe_about_an_open_payment(owner_api, company) -> None:
    from apps.billing.purchases import clients

    body = buy(owner_api).json()
    purchase = CreditPurchase.objects.get(public_id=body["id"])
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")

    detail = owner_api.get(f"{URL}{body['id']}/").json()

    assert detail["status"] == "succeeded"
    assert detail["amount_received"] == "25.00"
    assert company_balance(company) == Decimal("25")


def test_the_receipt_of_a_paid_purchase_is_a_pdf(owner_api, company, owner) -> None:
    paid = populate_billing(company, owner)
    pending = wire_purchase(company, owner)

    receipt = owner_api.get(f"{URL}{paid.public_id}/receipt/")
    missing = owner_api.get(f"{URL}{pending.public_id}/receipt/")

    assert receipt.status_code == 200
    assert receipt["Content-Type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF")
    assert missing.status_code == 404


def test_saved_cards_are_listed_with_no_card_number(owner_api, company, owner) -> None:
    saved_card(company, owner, last4="4242", is_default=True)
    saved_card(company, owner, last4="5556", is_default=False)

    response = owner_api.get("/api/v1/payment-methods/")

    rows = response.json()["results"]
    assert [(r["brand"], r["last4"], r["exp_month"], r["exp_year"], r["is_default"]) for r in rows] == [
        ("visa", "4242", 12, 2030, True),
        ("visa", "5556", 12, 2030, False),
    ]
    assert set(rows[0]) == {"id", "brand", "last4", "exp_month", "exp_year", "is_default", "created_at"}
    assert "4242424242424242" not in response.content.decode()


def test_a_card_is_made_default_and_removed(owner_api, company, owner, localstripe: LocalStripe) -> None:
    first, second = saved_card(company, owner, is_default=True), saved_card(company, owner, is_default=False)

    made = owner_api.post(f"/api/v1/payment-methods/{second.public_id}/default/")
    removed = owner_api.delete(f"/api/v1/payment-methods/{first.public_id}/")

    assert made.json()["is_default"] is True
    assert removed.status_code == 204
    assert list(SavedPaymentMethod.objects.values_list("pk", "is_default")) == [(second.pk, True)]


def test_a_viewer_cannot_remove_a_card(company, owner) -> None:
    card = saved_card(company, owner)
    viewer = client_as(member(company, Role.VIEWER))

    assert viewer.delete(f"/api/v1/payment-methods/{card.public_id}/").status_code == 403
    assert viewer.get(f"/api/v1/payment-methods/{card.public_id}/").status_code == 200
    assert SavedPaymentMethod.objects.count() == 1


# The same for 1 row or many.
LIST_QUERIES = (*SIGNED_IN, "the count", "the page")


def test_the_purchase_list_makes_a_fixed_number_of_queries(owner_api, company, owner) -> None:
    wire_purchase(company, owner)
    with expect_queries(*LIST_QUERIES):
        assert owner_api.get(URL).status_code == 200
    for _ in range(5):
        populate_billing(company, owner)

    with expect_queries(*LIST_QUERIES):
        assert owner_api.get(URL).json()["count"] == 6


def test_the_payment_method_list_makes_a_fixed_number_of_queries(owner_api, company, owner) -> None:
    saved_card(company, owner)
    with expect_queries(*LIST_QUERIES):
        assert owner_api.get("/api/v1/payment-methods/").status_code == 200
    for _ in range(5):
        saved_card(company, owner, is_default=False)

    with expect_queries(*LIST_QUERIES):
        assert owner_api.get("/api/v1/payment-methods/").json()["count"] == 6


def test_another_companys_purchases_and_cards_are_not_found(owner_api, other_company) -> None:
    other_owner = member(other_company, Role.OWNER)
    theirs = populate_billing(other_company, other_owner)
    their_card = SavedPaymentMethod.objects.get(company=other_company)
    CompanyFactory()  # a third company, for good measure

    assert owner_api.get(URL).json()["count"] == 0
    assert owner_api.get(f"{URL}{theirs.public_id}/").status_code == 404
    assert owner_api.get(f"{URL}{theirs.public_id}/receipt/").status_code == 404
    assert owner_api.delete(f"/api/v1/payment-methods/{their_card.public_id}/").status_code == 404
