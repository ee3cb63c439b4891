"""Issue 13, item 2: a credit form sent with bad input comes back with every value and choice
as sent and the error under the field it concerns, and nothing is moved or saved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.billing.ledger.allocations import profile_balance
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import AutoRecharge, LedgerTransaction, ProfileAutoRecharge
from tests.billing.factories import saved_card
from tests.factories import grant
from tests.helpers.forms import read_form
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_take_back_larger_than_the_profile_balance_comes_back_as_take_back_with_its_amount(company, owner) -> None:
    grant(company, "100")
    profile, _ = digest_profile(company, owner)
    before = company_balance(company)
    moves = LedgerTransaction.objects.count()

    response = browser(owner).post(
        f"/sip-profiles/{profile.public_id}/credit/", {"action": "take_back", "amount": "30", "key": "k1"}
    )

    values, errors = read_form(response.content, "profile-credit-form")
    assert response.status_code == 400
    assert values["action"] == "take_back", "the form must not switch to Allocate"
    assert values["amount"] == "30"
    assert values["key"] == "k1"
    assert "id_credit_amount" in errors, errors
    assert (company_balance(company), profile_balance(profile)) == (before, Decimal("0"))
    assert LedgerTransaction.objects.count() == moves


def test_an_amount_that_is_not_a_number_is_kept_with_its_error_under_the_amount(company, owner) -> None:
    profile, _ = digest_profile(company, owner)

    response = browser(owner).post(
        f"/sip-profiles/{profile.public_id}/credit/", {"action": "take_back", "amount": "12,50", "key": "k2"}
    )

    values, errors = read_form(response.content, "profile-credit-form")
    assert response.status_code == 400
    assert (values["action"], values["amount"]) == ("take_back", "12,50")
    assert errors["id_credit_amount"] == "Enter a number."


def test_the_allocation_that_works_redirects_to_a_fresh_form(company, owner) -> None:
    grant(company, "100")
    profile, _ = digest_profile(company, owner)
    client = browser(owner)

    response = client.post(
        f"/sip-profiles/{profile.public_id}/credit/", {"action": "allocate", "amount": "10", "key": "k3"}
    )
    page = client.get(f"/sip-profiles/{profile.public_id}/")

    assert response.status_code == 302
    assert profile_balance(profile) == Decimal("10")
    values, errors = read_form(page.content, "profile-credit-form")
    assert (values["action"], values["amount"], errors) == ("allocate", "", {})
    assert values["key"] != "k3"


def test_a_bad_profile_auto_recharge_keeps_its_values_and_the_enabled_tick(company, owner) -> None:
    profile, _ = digest_profile(company, owner)

    response = browser(owner).post(
        f"/sip-profiles/{profile.public_id}/auto-recharge/",
        {"enabled": "on", "amount": "abc", "threshold": "7.50", "monthly_limit": "120"},
    )

    values, errors = read_form(response.content, "profile-auto-recharge-form")
    assert response.status_code == 400
    assert values.pop("once")  # the form's one-time token, for the corrected sending
    assert values == {
        "csrfmiddlewaretoken": values["csrfmiddlewaretoken"],
        "enabled": "on",
        "amount": "abc",
        "threshold": "7.50",
        "monthly_limit": "120",
    }
    assert set(errors) == {"id_profile_auto_recharge_amount"}, errors
    assert errors["id_profile_auto_recharge_amount"] == "Enter an amount such as 25 or 25.50."
    assert not ProfileAutoRecharge.objects.filter(enabled=True).exists()


def test_a_bad_company_auto_recharge_keeps_its_values_its_card_and_the_enabled_tick(company, owner) -> None:
    saved_card(company, owner, last4="4242")
    second = saved_card(company, owner, last4="1881", is_default=False)

    response = browser(owner).post(
        "/credit/auto-recharge/",
        {
            "enabled": "on",
            "amount": "5",
            "threshold": "-1",
            "monthly_limit": "300",
            "payment_method": str(second.public_id),
        },
    )

    values, errors = read_form(response.content, "auto-recharge-form")
    assert response.status_code == 400
    assert (values["enabled"], values["amount"], values["threshold"], values["monthly_limit"]) == (
        "on",
        "5",
        "-1",
        "300",
    )
    assert values["payment_method"] == str(second.public_id)
    assert set(errors) == {"id_auto_recharge_amount", "id_auto_recharge_threshold"}, errors
    assert errors["id_auto_recharge_amount"] == "The minimum purchase is 10.00 GBP."
    assert not AutoRecharge.objects.exists()
    # The buy form beside it is fresh, not an echo of the other form's fields.
    buy, buy_errors = read_form(response.content, "buy-credit-form")
    assert (buy["amount"], buy["method"], buy_errors) == ("", "card", {})


def test_a_company_auto_recharge_switched_off_with_bad_values_stays_unticked(company, owner) -> None:
    response = browser(owner).post(
        "/credit/auto-recharge/", {"amount": "50", "threshold": "x", "monthly_limit": "200", "payment_method": ""}
    )

    values, errors = read_form(response.content, "auto-recharge-form")
    assert response.status_code == 400
    assert "enabled" not in values
    assert (values["amount"], values["threshold"]) == ("50", "x")
    assert set(errors) == {"id_auto_recharge_threshold"}


def test_a_purchase_above_the_limit_keeps_the_amount_the_method_and_the_save_card_tick(company, owner) -> None:
    response = browser(owner).post("/credit/", {"amount": "999999", "method": "card", "save_card": "on"})

    values, errors = read_form(response.content, "buy-credit-form")
    assert response.status_code == 400
    assert (values["amount"], values["method"], values["save_card"]) == ("999999", "card", "on")
    assert "id_amount" in errors, errors
