"""The credit pages: balance, buying (card, PayPal, bank wire), paying, receipts, saved cards."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import CreditPurchase, SavedPaymentMethod
from apps.billing.purchases import clients
from apps.companies.models import Role, VerificationStatus
from tests.billing.factories import populate_billing, saved_card, wire_purchase
from tests.billing.stripe_fixtures import LocalStripe
from tests.factories import member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def web(owner: Any) -> Client:
    return browser(owner)


def stripe_config(html: str) -> dict[str, Any]:
    start = html.index('<script id="stripe-config" type="application/json">') + len(
        '<script id="stripe-config" type="application/json">'
    )
    return dict(json.loads(html[start : html.index("</script>", start)]))


def test_the_credit_page_shows_the_balance_the_form_and_the_limits(web, company, owner) -> None:
    populate_billing(company, owner)

    html = web.get("/credit/").content.decode()

    assert '<div class="value" id="company-balance">50.00 GBP</div>' in html
    assert 'id="buy-credit"' in html
    assert 'value="bank_wire"  disabled' in html, "bank wire is offered to verified companies only"
    assert "Receipt (PDF)" in html
    assert "Visa ending 4242" in html


def test_a_viewer_sees_the_balance_but_cannot_buy(company) -> None:
    viewer = browser(member(company, Role.VIEWER))

    html = viewer.get("/credit/").content.decode()

    assert 'id="company-balance"' in html
    assert 'id="buy-credit"' not in html
    assert viewer.post("/credit/", {"amount": "20", "method": "card"}).status_code == 403


def test_buying_by_card_in_the_browser_credits_the_balance(web, company, localstripe: LocalStripe) -> None:
    started = web.post("/credit/", {"amount": "25", "method": "card", "save_card": "on"})
    purchase = CreditPurchase.objects.get()
    assert started.status_code == 302
    assert started["Location"] == f"/credit/purchases/{purchase.public_id}/pay/"

    pay_page = web.get(started["Location"]).content.decode()
    config = stripe_config(pay_page)
    assert f'<script src="{localstripe.base}/js.stripe.com/v3/"></script>' in pay_page
    assert config["publishableKey"].startswith("pk_")
    # localstripe stands in for Stripe: the page says which of its test cards do what.
    assert 'id="test-mode-cards"' in pay_page
    assert "<code>4242424242424242</code> pays; <code>4000000000000002</code> is declined" in pay_page
    # Stripe.js, in the browser: the card goes to Stripe, our server gets the SetupIntent's id.
    assert localstripe.confirm_setup(config["setupClientSecret"]).status_code == 200
    setup_intent = config["setupClientSecret"].split("_secret_")[0]
    paid = web.post(started["Location"], {"setup_intent": setup_intent}, follow=True)

    html = paid.content.decode()
    assert "Payment received: 25.00 GBP was added." in html
    assert 'id="company-balance">25.00 GBP' in html
    assert company_balance(company) == Decimal("25")
    assert SavedPaymentMethod.objects.get(company=company).last4 == "4242"


def test_a_setup_intent_that_is_not_the_purchases_is_refused(web, company, owner) -> None:
    web.post("/credit/", {"amount": "25", "method": "card"})
    purchase = CreditPurchase.objects.get()

    response = web.post(
        f"/credit/purchases/{purchase.public_id}/pay/", {"setup_intent": "seti_someone_elses"}, follow=True
    )

    assert "The card form has expired" in response.content.decode()
    assert CreditPurchase.objects.get().status == CreditPurchase.Status.PENDING


def test_paying_with_a_saved_card_on_the_pay_page(web, company, owner) -> None:
    from apps.billing.purchases.payment_methods import stripe_customer_id

    card = clients.payment_method_attach("pm_card_visa", customer=stripe_customer_id(company))
    saved = SavedPaymentMethod.objects.create(
        company=company, stripe_id=card.id, brand="visa", last4="4242", exp_month=12, exp_year=2030, is_default=True
    )
    web.post("/credit/", {"amount": "75", "method": "card"})
    purchase = CreditPurchase.objects.get()

    assert "Visa ending 4242" in web.get(f"/credit/purchases/{purchase.public_id}/pay/").content.decode()
    web.post(f"/credit/purchases/{purchase.public_id}/pay/", {"saved_card": str(saved.public_id)})

    assert company_balance(company) == Decimal("75")


def test_the_purchase_page_finds_a_payment_made_in_the_browser(web, company) -> None:
    """The browser comes back (or Stripe.js confirmed on its own): the page asks Stripe."""
    web.post("/credit/", {"amount": "30", "method": "card"})
    purchase = CreditPurchase.objects.get()
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")

    html = web.get(f"/credit/purchases/{purchase.public_id}/").content.decode()

    assert "was added to your balance" in html
    assert company_balance(company) == Decimal("30")


def test_a_declined_card_shows_why_and_offers_to_try_again(web, company, localstripe: LocalStripe) -> None:
    web.post("/credit/", {"amount": "30", "method": "card"})
    purchase = CreditPurchase.objects.get()
    config = stripe_config(web.get(f"/credit/purchases/{purchase.public_id}/pay/").content.decode())
    localstripe.confirm_setup(config["setupClientSecret"], "4000000000000341")

    html = web.post(
        f"/credit/purchases/{purchase.public_id}/pay/",
        {"setup_intent": config["setupClientSecret"].split("_secret_")[0]},
        follow=True,
    ).content.decode()

    assert "The payment failed: Your card was declined." in html
    assert "Try again" in html
    assert company_balance(company) == Decimal("0")


def test_a_payment_waiting_for_3d_secure_shows_the_confirmation_step(web, company, localstripe: LocalStripe) -> None:
    web.post("/credit/", {"amount": "30", "method": "card"})
    purchase = CreditPurchase.objects.get()
    config = stripe_config(web.get(f"/credit/purchases/{purchase.public_id}/pay/").content.decode())
    localstripe.confirm_setup(config["setupClientSecret"], "4000002500003155")
    localstripe.complete_setup_authentication(config["setupClientSecret"])

    html = web.post(
        f"/credit/purchases/{purchase.public_id}/pay/",
        {"setup_intent": config["setupClientSecret"].split("_secret_")[0]},
        follow=True,
    ).content.decode()

    assert 'id="authenticate"' in html
    assert stripe_config(html)["paymentClientSecret"].startswith(purchase.stripe_payment_intent or "pi_")


def test_above_the_limit_the_form_says_so(web) -> None:
    response = web.post("/credit/", {"amount": "150", "method": "card"})

    assert response.status_code == 400
    assert "Your limit is 100.00 GBP per purchase. Verify your company to raise it." in response.content.decode()
    assert not CreditPurchase.objects.exists()


def test_a_bank_wire_shows_the_instructions_with_the_reference(web, company, settings) -> None:
    settings.BANK_WIRE_INSTRUCTIONS = "Bank: Example Bank plc\nIBAN: GB00 TEST 0000 0000 0000 00"
    company.verification_status = VerificationStatus.VERIFIED
    company.save(update_fields=["verification_status"])

    response = web.post("/credit/", {"amount": "2000", "method": "bank_wire"}, follow=True)

    purchase = CreditPurchase.objects.get()
    html = response.content.decode()
    assert "<title>Bank wire instructions" in html
    assert f'value="{purchase.wire_reference}"' in html
    assert "IBAN: GB00 TEST 0000 0000 0000 00" in html
    assert "2,000.00 GBP" in html


def test_a_paypal_purchase_opens_the_paypal_step(web, company) -> None:
    response = web.post("/credit/", {"amount": "20", "method": "paypal"}, follow=True)

    purchase = CreditPurchase.objects.get()
    html = response.content.decode()
    assert 'id="paypal-button"' in html
    config = stripe_config(html)
    assert config["paymentClientSecret"].startswith(f"{purchase.stripe_payment_intent}_secret_")
    assert config["returnUrl"].endswith(f"/credit/purchases/{purchase.public_id}/")


def test_the_receipt_is_a_pdf_only_once_paid(web, company, owner) -> None:
    paid = populate_billing(company, owner)
    pending = wire_purchase(company, owner)

    receipt = web.get(f"/credit/purchases/{paid.public_id}/receipt.pdf")

    assert receipt.status_code == 200
    assert receipt["Content-Type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF")
    assert web.get(f"/credit/purchases/{pending.public_id}/receipt.pdf").status_code == 404


def test_cards_are_made_default_and_removed_on_the_credit_page(web, company, owner) -> None:
    first, second = saved_card(company, owner), saved_card(company, owner, last4="1881", is_default=False)

    web.post(f"/credit/cards/{second.public_id}/default/")
    removed = web.post(f"/credit/cards/{first.public_id}/remove/", follow=True)

    assert "was removed" in removed.content.decode()
    assert list(SavedPaymentMethod.objects.values_list("last4", "is_default")) == [("1881", True)]


def test_the_webhook_only_takes_posts(client) -> None:
    assert client.get("/stripe/webhook/").status_code == 405


def test_the_sidebar_links_to_the_credit_page(web) -> None:
    assert '<a href="/credit/">Credit</a>' in web.get("/").content.decode()
    assert '<a href="/credit/" aria-current="page">Credit</a>' in web.get("/credit/").content.decode()


def test_a_receipt_renders_for_a_company_name_outside_latin_1(web, company, owner) -> None:
    company.name = "Ωmega Téléphonie 株式会社"
    company.save(update_fields=["name"])
    paid = populate_billing(company, owner)

    receipt = web.get(f"/credit/purchases/{paid.public_id}/receipt.pdf")

    assert receipt.status_code == 200
    assert receipt.content.startswith(b"%PDF")
