"""Every money input reads ASCII decimals only, bounded by what its column holds, and says
what is wrong (issue 12, items 1 and 2): purchases, company and profile auto-recharge, and
moving credit to a profile. Nothing is bought, set or moved by a refused amount."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml
from django.test import Client

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import AutoRecharge, CreditPurchase, LedgerTransaction
from apps.billing.money import CENTS, amount_maximum, clean_amount
from apps.core.exceptions import ApplicationError
from tests.factories import grant
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

NOT_AMOUNTS = [
    "١٠",  # Arabic-Indic digits: Decimal() reads them as 10
    "１０",  # fullwidth digits
    "1e400",
    "1E2",
    "NaN",
    "-Infinity",
    "0x10",
    "1_000",
    "10.",
    ".5",
    "1,000",
    "10 .5",
]
TOO_LARGE = ["99999999999999999999", "10000000000"]


@pytest.mark.parametrize("text", NOT_AMOUNTS)
def test_only_ascii_decimals_are_amounts(text) -> None:
    with pytest.raises(ApplicationError) as refused:
        clean_amount(text, quantum=CENTS)

    assert set(refused.value.errors) == {"amount"}
    assert "such as 25 or 25.50" in refused.value.message


@pytest.mark.parametrize("text", ["NaN", "nan", "Infinity", "-inf"])
def test_not_a_number_is_said_in_so_many_words(text) -> None:
    with pytest.raises(ApplicationError) as refused:
        clean_amount(text)

    assert refused.value.message.startswith(f"“{text}” is not a number.")


def test_the_bound_is_what_the_column_holds_and_is_said() -> None:
    assert clean_amount("9999999999.99", quantum=CENTS) == Decimal("9999999999.99")
    assert amount_maximum(CENTS) == Decimal("9999999999.99")
    with pytest.raises(ApplicationError) as refused:
        clean_amount("10000000000", quantum=CENTS)

    assert refused.value.message == "The amount must be at most 9,999,999,999.99."
    assert refused.value.code == "above_maximum"


def test_amounts_as_written_are_still_read() -> None:
    assert clean_amount("25") == Decimal("25")
    assert clean_amount(" 25.50 ", quantum=CENTS) == Decimal("25.50")
    assert clean_amount(Decimal("12.3400")) == Decimal("12.34")
    assert clean_amount(10) == Decimal("10")


def _field_error(response: Any, field: str) -> str:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert field in body["errors"], body
    return str(body["errors"][field][0])


@pytest.mark.usefixtures("localstripe")
@pytest.mark.parametrize("amount", [*NOT_AMOUNTS, *TOO_LARGE])
def test_a_purchase_of_a_non_amount_is_refused_and_nothing_is_bought(owner_api, amount) -> None:
    response = owner_api.post("/api/v1/credit/purchases/", {"amount": amount, "method": "card"}, format="json")

    _field_error(response, "amount")
    assert not CreditPurchase.objects.exists()


@pytest.mark.parametrize("whose", ["company", "profile"])
@pytest.mark.parametrize("amount", [*NOT_AMOUNTS, *TOO_LARGE])
def test_auto_recharge_refuses_non_amounts_in_every_field(owner_api, company, owner, whose, amount) -> None:
    profile, _ = digest_profile(company, owner)
    url = {
        "company": "/api/v1/credit/auto-recharge/",
        "profile": f"/api/v1/sip-profiles/{profile.public_id}/auto-recharge/",
    }[whose]

    response = owner_api.put(
        url, {"enabled": False, "amount": amount, "threshold": amount, "monthly_limit": amount}, format="json"
    )

    for field in ("amount", "threshold", "monthly_limit"):
        _field_error(response, field)
    assert not AutoRecharge.objects.exists()


@pytest.mark.parametrize("amount", [*NOT_AMOUNTS, *TOO_LARGE])
def test_moving_a_non_amount_to_a_profile_moves_nothing(owner_api, company, owner, amount) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "100")
    transactions = LedgerTransaction.objects.count()

    response = owner_api.post(
        f"/api/v1/sip-profiles/{profile.public_id}/credit/", {"action": "allocate", "amount": amount}, format="json"
    )

    _field_error(response, "amount")
    assert company_balance(company) == Decimal("100")
    assert LedgerTransaction.objects.count() == transactions


def test_the_schema_states_each_money_inputs_format_and_bound(db) -> None:
    schema = yaml.safe_load(Client().get("/api/v1/schema/").content)
    components = schema["components"]["schemas"]
    inputs = [
        components["PurchaseListInputRequest"]["properties"]["amount"],
        components["AutoRechargeInputRequest"]["properties"]["threshold"],
        components["ProfileCreditInputRequest"]["properties"]["amount"],
    ]

    for amount in inputs:
        assert amount["type"] == "string"
        assert amount["pattern"].startswith("^[0-9]+")
        assert (
            "at most 9,999,999,999.99" in amount["description"] or "at most 9,999,999,999.9999" in amount["description"]
        )
