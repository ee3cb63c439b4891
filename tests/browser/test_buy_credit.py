"""End to end in Chromium (issue 4, item 9): a company owner buys credit with test card
4242 4242 4242 4242 in the real card form (localstripe's imitation of Stripe.js and its
Elements), and sees the balance on the credit page once the payment succeeded. localstripe
also delivers its signed webhook to the live server: the payment is credited once all the same."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.billing.models import CreditPurchase, LedgerTransaction, SavedPaymentMethod, StripeEvent
from apps.billing.selectors import company_balance
from apps.companies.models import Role
from tests.billing.card_numbers import card_numbers_in, card_numbers_in_database
from tests.billing.stripe_fixtures import localstripe, localstripe_server, stripe_webhooks
from tests.factories import PASSWORD, CompanyFactory, member

__all__ = ["localstripe", "localstripe_server", "stripe_webhooks"]

EMAIL = "owner@credit.example"
COMPANY = "Credit Calls Ltd"
TIMEOUT_MS = 15_000


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")
    expect(page, "sign-in should end on the dashboard").to_have_url(f"{base}/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_buy_credit_with_a_test_card_and_see_the_balance(live_server: Any, page: Page, stripe_webhooks: Any) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    company = CompanyFactory(name=COMPANY, country="GB", currency="GBP")
    member(company, Role.OWNER, email=EMAIL)
    sign_in(page, base)

    page.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("#company-balance"), "a new company has no credit").to_have_text("0.00 GBP")
    page.get_by_label("Amount (GBP)").fill("25")
    page.get_by_role("radio", name="Card", exact=True).check()
    page.get_by_label("Save this card for later payments").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.locator("main h1")).to_have_text("Pay 25.00 GBP by Card")
    # Stripe's card element (here localstripe's imitation, loaded from its Stripe.js URL).
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("30")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("12345")
    page.get_by_role("button", name="Pay 25.00 GBP").click()

    expect(page.get_by_role("status"), "the pay step reports the payment").to_contain_text(
        "Payment received: 25.00 GBP was added."
    )
    expect(page.locator("#purchase-status")).to_have_text("Paid")
    page.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("#company-balance"), "the balance shows the credit").to_have_text("25.00 GBP")
    expect(page.locator("#saved-cards"), "the card was saved, by its last digits").to_contain_text("Visa ending 4242")
    expect(page.locator("#purchases")).to_contain_text("Paid")

    # localstripe's webhook arrives about a second after the payment: credited once all the same.
    purchase = CreditPurchase.objects.get(company=company)
    ours = StripeEvent.objects.filter(
        payload__data__object__id=purchase.stripe_payment_intent, type="payment_intent.succeeded"
    )
    deadline = time.monotonic() + 15
    while not ours.filter(status=StripeEvent.Status.PROCESSED).exists():
        assert time.monotonic() < deadline, "localstripe's webhook did not arrive"
        time.sleep(0.2)
    assert purchase.status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == Decimal("25")
    assert LedgerTransaction.objects.filter(idempotency_key=f"stripe:{purchase.stripe_payment_intent}").count() == 1
    assert SavedPaymentMethod.objects.get(company=company).last4 == "4242"

    # The card number went from the browser to Stripe only.
    assert not card_numbers_in(page.content())
    assert card_numbers_in_database() == {}
    receipt = page.request.get(f"{base}/credit/purchases/{purchase.public_id}/receipt.pdf")
    assert receipt.ok
    assert receipt.body().startswith(b"%PDF")
