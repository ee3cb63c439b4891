"""Money is written one way for people (apps.core.money.format_money), on pages through the
`money` template filters as in messages, e-mails, receipts and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

from apps.billing.money import format_money as billing_format_money
from apps.core.money import format_money
from tests.factories import grant


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("1234.5"), "EUR", "1,234.50 EUR"),
        (Decimal("0"), "GBP", "0.00 GBP"),
        (Decimal("34.4450"), "GBP", "34.45 GBP"),  # half up, as the ledger rounds (not half to even)
        (Decimal("34.4350"), "GBP", "34.44 GBP"),
        (Decimal("-12.3456"), "USD", "-12.35 USD"),
        (Decimal("-0.0001"), "USD", "0.00 USD"),  # never "-0.00"
        (Decimal("1000000"), "", "1,000,000.00"),  # no currency: the number alone
        (25, "GBP", "25.00 GBP"),
    ],
)
def test_an_amount_is_written_with_two_places_grouped_and_rounded_half_up(amount, currency, shown) -> None:
    assert format_money(amount, currency) == shown


def test_the_ledger_places_are_four_and_billing_uses_the_same_function() -> None:
    assert format_money(Decimal("1234.56785"), "GBP", places=4) == "1,234.5679 GBP"
    assert billing_format_money is format_money


def render(text: str, **context: object) -> str:
    return Template("{% load money %}" + text).render(Context(context))


def test_the_template_filters_call_format_money() -> None:
    assert render("{{ a|money:c }}", a=Decimal("1234.5"), c="GBP") == "1,234.50 GBP"
    assert render("{{ a|money }}", a=Decimal("34.4450")) == "34.45"
    assert render("{{ a|ledger_money }}", a=Decimal("-1234.5")) == "-1,234.5000"
    assert render("{{ a|ledger_money:c }}", a=Decimal("2"), c="EUR") == "2.0000 EUR"
    assert render("{{ a|money:c }}", a="12.5", c="USD") == "12.50 USD"  # text, as a form gives it back


@pytest.mark.parametrize("value", [None, "", "not a number", "NaN"])
def test_no_amount_shows_nothing_as_floatformat_did(value) -> None:
    assert render("[{{ a|money:'GBP' }}][{{ a|ledger_money }}]", a=value) == "[][]"


@pytest.mark.django_db
def test_the_credit_page_and_the_statement_show_the_balance_as_format_money_writes_it(company, owner) -> None:
    grant(company, "1234.5650")
    client = Client()
    client.force_login(owner)

    credit = client.get(reverse("credit")).content.decode()
    statement = client.get(reverse("credit-statement")).content.decode()

    assert '<div class="value" id="company-balance">1,234.57 GBP</div>' in credit
    assert '<td class="mono" style="text-align:right">1,234.57</td>' in statement  # 2 places, as on every page
