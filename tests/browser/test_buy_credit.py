"""End to end in Chromium (issue 4, item 9): a company owner buys credit with test card
4242 4242 4242 4242 in the real card form (localstripe's imitation of Stripe.js and its
Elements), and sees the balance on the credit page once the payment succeeded. localstripe
also delivers its signed webhook to the live server: the payment is credited once all the same.

Then the same owner allocates part of the credit to a SIP profile on its page and turns on the
company auto-recharge with the card saved during the purchase."""

from __future__ import annotations

import re
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.billing.ledger.allocations import profile_balance
from apps.billing.ledger.selectors import allocation_history, company_balance, profile_balances
from apps.billing.models import (
    AutoRecharge,
    Charge,
    CreditPurchase,
    LedgerTransaction,
    RechargeAttempt,
    SavedPaymentMethod,
    StripeEvent,
)
from apps.companies.models import Company, Role
from tests.billing.card_numbers import card_numbers_in, card_numbers_in_database
from tests.billing.stripe_fixtures import localstripe, localstripe_server, stripe_webhooks
from tests.factories import PASSWORD, CompanyFactory, member
from tests.sip_profiles.factories import digest_profile

__all__ = ["localstripe", "localstripe_server", "stripe_webhooks"]

EMAIL = "owner@credit.example"
COMPANY = "Credit Calls Ltd"
PROFILE = "Main PBX"
TIMEOUT_MS = 15_000


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")
    expect(page, "sign-in should end on the dashboard").to_have_url(f"{base}/")


def money(amount: Decimal) -> str:
    """An amount as the pages show it (no thousands here): rounded half-up, as floatformat does
    (Python's own format rounds half to even: 34.4450 would read 34.44 here and 34.45 there)."""
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}"


def buy_credit_with_a_saved_card(page: Page, amount: int = 25) -> None:
    """From the dashboard: buy `amount` GBP by card with 4242 4242 4242 4242, ticking "Save this
    card", and see the balance on the credit page (the company had no credit before)."""
    shown = f"{amount}.00 GBP"
    page.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("#company-balance"), "a new company has no credit").to_have_text("0.00 GBP")
    buy = page.locator("#buy-credit")
    buy.get_by_label("Amount (GBP)", exact=True).fill(str(amount))
    buy.get_by_role("radio", name="Card", exact=True).check()
    buy.get_by_label("Save this card for later payments").check()
    buy.get_by_role("button", name="Continue").click()

    expect(page.locator("main h1")).to_have_text(f"Pay {shown} by Card")
    # Stripe's card element (here localstripe's imitation, loaded from its Stripe.js URL).
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("30")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("12345")
    page.get_by_role("button", name=f"Pay {shown}").click()

    expect(page.get_by_role("status"), "the pay step reports the payment").to_contain_text(
        f"Payment received: {shown} was added."
    )
    expect(page.locator("#purchase-status")).to_have_text("Paid")
    page.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("#company-balance"), "the balance shows the credit").to_have_text(shown)
    expect(page.locator("#saved-cards"), "the card was saved, by its last digits").to_contain_text("Visa ending 4242")
    expect(page.locator("#purchases")).to_contain_text("Paid")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_buy_credit_with_a_test_card_and_see_the_balance(live_server: Any, page: Page, stripe_webhooks: Any) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    company = CompanyFactory(name=COMPANY, country="GB", currency="GBP")
    member(company, Role.OWNER, email=EMAIL)
    sign_in(page, base)
    buy_credit_with_a_saved_card(page)

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


def wait_for_the_webhook(company: Company) -> None:
    """localstripe's webhook for the purchase lands about a second after the payment: wait for
    it (polling the database, not a fixed sleep) so that it never races the rest of the test."""
    purchase = CreditPurchase.objects.get(company=company)
    ours = StripeEvent.objects.filter(
        payload__data__object__id=purchase.stripe_payment_intent,
        type="payment_intent.succeeded",
        status=StripeEvent.Status.PROCESSED,
    )
    deadline = time.monotonic() + 15
    while not ours.exists():
        assert time.monotonic() < deadline, "localstripe's webhook did not arrive"
        time.sleep(0.2)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_allocate_credit_to_a_profile_and_turn_on_auto_recharge(
    live_server: Any, page: Page, stripe_webhooks: Any
) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    company = CompanyFactory(name=COMPANY, country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email=EMAIL)
    sign_in(page, base)
    buy_credit_with_a_saved_card(page, amount=50)
    wait_for_the_webhook(company)
    assert company_balance(company) == Decimal("50")

    # A profile made after the purchase: its two channels are charged from the company balance,
    # prorated to the renewal day (so the amount depends on the date).
    profile, _ = digest_profile(company, owner, name=PROFILE)
    channels = Charge.objects.get(company=company)
    assert channels.status == Charge.Status.PAID
    company_before = Decimal("50") - channels.amount
    assert company_before > Decimal("15"), f"the channels cost {channels.amount}: too little left to allocate 10"
    assert company_balance(company) == company_before
    assert profile_balance(profile) == Decimal("0")

    # 1. Allocate 10 GBP to the profile on its page.
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    credit = page.locator("#profile-credit")
    expect(credit.locator("#profile-balance"), "a new profile holds no credit").to_have_text(
        f"0.00 GBP (company balance {money(company_before)})"
    )
    credit.get_by_role("combobox", name="Allocate or take back").select_option(label="Allocate")
    credit.get_by_role("textbox", name="Amount (GBP)", exact=True).fill("10")
    credit.get_by_role("button", name="Move credit").click()

    expect(page.get_by_role("status")).to_contain_text(f"10.00 GBP allocated to {PROFILE}.")
    company_after = company_before - Decimal("10")
    expect(credit.locator("#profile-balance"), "the profile holds the credit, the company less").to_have_text(
        f"10.00 GBP (company balance {money(company_after)})"
    )
    history = credit.locator("table tbody tr")
    expect(history, "the allocation is listed on the profile").to_have_count(1)
    expect(history.first).to_contain_text("10.00")
    assert profile_balance(profile) == Decimal("10")
    assert profile_balances(company) == {profile.pk: Decimal("10")}
    assert company_balance(company) == company_after
    [entry] = allocation_history(company=company, profile=profile)
    assert entry.amount == Decimal("10")
    assert entry.transaction.kind == LedgerTransaction.Kind.ALLOCATION

    page.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("#company-balance"), "the credit page shows the lower balance").to_have_text(
        f"{money(company_after)} GBP"
    )

    # 2. Company auto-recharge with the card saved during the purchase.
    card = SavedPaymentMethod.objects.get(company=company)
    form = page.locator("#auto-recharge")
    expect(form.locator("#auto-recharge-status"), "auto-recharge starts off").to_contain_text("Off")
    form.get_by_label("Recharge automatically").check()
    form.get_by_label("Recharge amount (GBP)").fill("20")
    # Below the current balance: saving must not charge the card at once.
    form.get_by_label("When the balance falls below (GBP)").fill("5")
    form.get_by_label("At most per month (GBP)").fill("60")
    form.get_by_label(re.compile(r"^Card:?$")).select_option(label=str(card))
    form.get_by_role("button", name="Save auto-recharge").click()

    expect(page.get_by_role("status")).to_contain_text("Auto-recharge saved.")
    expect(page.locator("#auto-recharge-status"), "auto-recharge is on, with the settings").to_contain_text(
        "On 20.00 GBP when the balance falls below 5.00 GBP, at most 60.00 GBP a month."
    )
    expect(page.locator("#auto-recharge-month-total")).to_have_text("0.00")
    # The form shows what was saved.
    expect(form.get_by_label("Recharge automatically")).to_be_checked()
    expect(form.get_by_label("Recharge amount (GBP)")).to_have_value("20.00")
    expect(form.get_by_label(re.compile(r"^Card:?$"))).to_have_value(str(card.public_id))
    expect(page.locator("#company-balance")).to_have_text(f"{money(company_after)} GBP")

    auto = AutoRecharge.objects.get(company=company)
    assert auto.enabled
    assert (auto.amount, auto.threshold, auto.monthly_limit) == (Decimal("20"), Decimal("5"), Decimal("60"))
    assert auto.payment_method == card
    assert auto.armed_at is not None
    assert auto.consecutive_failures == 0
    assert auto.disabled_reason == ""
    assert not RechargeAttempt.objects.filter(company=company).exists(), "nothing is charged while above 5 GBP"
    assert company_balance(company) == company_after
    assert CreditPurchase.objects.filter(company=company).count() == 1

    assert not card_numbers_in(page.content())
    assert card_numbers_in_database() == {}
