from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.core.actor import Actor
from apps.numbers.models import OnlineNumber
from apps.numbers.services import number_buy
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(db) -> dict[str, OnlineNumber]:
    return {
        "london": OnlineNumberFactory(number="+442079460958", area="London"),
        "london2": OnlineNumberFactory(number="+442030001234", area="London"),
        "manchester": OnlineNumberFactory(number="+441612345678", area="Manchester"),
        "mobile": OnlineNumberFactory(number="+447400123456", area="", number_type="mobile"),
        "freephone": OnlineNumberFactory(number="+448001234567", area="", number_type="toll_free"),
        "new_york": OnlineNumberFactory(
            number="+12125550123", country="US", area="New York", price_3m_gbp=Decimal("3")
        ),
        "paris": OnlineNumberFactory(number="+33123456789", country="FR", area="Paris"),
        "quarantined": OnlineNumberFactory(
            number="+442079460999", status="quarantine", quarantine_until=datetime(2099, 1, 1, tzinfo=UTC)
        ),
    }


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["number"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {},
            [
                "+12125550123",
                "+33123456789",
                "+441612345678",
                "+442030001234",
                "+442079460958",
                "+447400123456",
                "+448001234567",
            ],
        ),
        ({"country": "GB", "area": "lond"}, ["+442030001234", "+442079460958"]),
        ({"country": "us"}, ["+12125550123"]),
        ({"contains": "7946"}, ["+442079460958"]),
        ({"contains": "79-46 09"}, ["+442079460958"]),  # spaces and dashes are ignored
        ({"contains": "+4420"}, ["+442030001234", "+442079460958"]),  # a leading + anchors at the start
        ({"contains": "+44 (0)20"}, []),  # the national 0 is not part of E.164
        (
            {"contains": "123"},
            ["+12125550123", "+33123456789", "+441612345678", "+442030001234", "+447400123456", "+448001234567"],
        ),
        ({"type": "toll_free"}, ["+448001234567"]),
        ({"type": "mobile", "country": "GB"}, ["+447400123456"]),
    ],
)
def test_companies_search_available_numbers_by_country_area_digits_and_type(
    company, owner, stock, query, expected
) -> None:
    assert numbers(client_as(owner).get("/api/v1/numbers/available/", query)) == expected


def test_search_results_are_priced_for_3_and_12_months_in_the_company_currency(company, owner, stock) -> None:
    row = client_as(owner).get("/api/v1/numbers/available/", {"country": "US"}).json()["results"][0]

    assert row == {
        "id": str(stock["new_york"].public_id),
        "number": "+12125550123",
        "country": "US",
        "area": "New York",
        "type": "geographic",
        "currency": "GBP",
        "price_3_months": "3.0000",
        "price_12_months": "14.0000",
    }


def test_numbers_held_or_in_quarantine_are_not_offered(company, owner, stock) -> None:
    number_buy(actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True)

    found = numbers(client_as(owner).get("/api/v1/numbers/available/", {"contains": "+44207946"}))

    assert found == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"contains": "79a6"}, "contains"),
        ({"contains": "1234567890123456"}, "contains"),
        ({"country": "XX"}, "country"),
        ({"type": "premium"}, "type"),
    ],
)
def test_bad_search_input_is_a_field_error(company, owner, query, field) -> None:
    response = client_as(owner).get("/api/v1/numbers/available/", query)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert list(body["errors"]) == [field]


def test_the_available_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    for _ in range(30):
        OnlineNumberFactory()
    client = client_as(owner)
    client.get("/api/v1/numbers/available/")

    with expect_queries(*SIGNED_IN, "the count", "the page of stock"):
        response = client.get("/api/v1/numbers/available/", {"country": "GB", "page_size": 20})

    assert response.json()["count"] == 30
    assert len(response.json()["results"]) == 20


def test_the_company_numbers_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    from apps.business_accounts.models import BusinessAccount

    account = BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")
    for index in range(12):
        stock = OnlineNumberFactory()
        number_buy(
            actor=Actor(user=owner),
            company=company,
            number=str(stock.number),
            months=3,
            auto_renew=True,
            business_account=account if index % 2 else None,
        )
    other = CompanyFactory()
    number_buy(
        actor=Actor(user=member(other)),
        company=other,
        number=str(OnlineNumberFactory().number),
        months=3,
        auto_renew=True,
    )
    client = client_as(owner)
    client.get("/api/v1/numbers/")

    with expect_queries(*SIGNED_IN, "the count", "the page, joined with stock and accounts"):
        response = client.get("/api/v1/numbers/", {"status": "active"})

    assert response.json()["count"] == 12
    assert sum(1 for row in response.json()["results"] if row["business_account_name"] == "sales.line") == 6
