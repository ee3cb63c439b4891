from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.billing.models import Charge
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import add_months, number_buy
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.helpers.races import run_concurrently
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db


def buy(client, number: str, months: int = 3, **extra):
    return client.post("/api/v1/numbers/", {"number": number, "months": months, **extra})


def test_buying_a_number_holds_it_prices_it_in_the_company_currency_and_records_the_charge(company, owner) -> None:
    stock = OnlineNumberFactory(number="+442079460958", price_3m_gbp=Decimal("4.2500"))
    moment = datetime(2027, 3, 15, 9, 30, tzinfo=UTC)

    with time_machine.travel(moment, tick=False):
        response = buy(client_as(owner), "+44 20 7946 0958", 3, auto_renew=False)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == "+442079460958"
    assert body["price"] == "4.2500"
    assert body["currency"] == "GBP"
    assert body["months"] == 3
    assert body["auto_renew"] is False
    assert body["status"] == "active"
    assert body["current_period_end"] == "2027-06-15T09:30:00Z"
    stock.refresh_from_db()
    assert stock.status == OnlineNumber.Status.ACTIVE
    subscription = NumberSubscription.objects.get(public_id=body["id"])
    assert subscription.created_at == subscription.current_period_start == moment
    charge = Charge.objects.get(company=company)
    assert charge.kind == "number"
    assert charge.amount == Decimal("4.2500")
    assert charge.currency == "GBP"
    assert charge.item == f"numbers.numbersubscription:{subscription.public_id}"
    assert charge.idempotency_key == f"number:{subscription.public_id}:2027-03-15T09:30:00+00:00"
    assert (charge.period_start, charge.period_end) == (moment, datetime(2027, 6, 15, 9, 30, tzinfo=UTC))
    assert AuditEvent.objects.filter(company=company, action="number.bought").count() == 1


def test_a_company_in_euros_pays_the_euro_price_for_twelve_months(db) -> None:
    company = CompanyFactory(country="FR", currency="EUR")
    owner = member(company)
    OnlineNumberFactory(number="+442079460001", price_12m_eur=Decimal("16.9900"))

    body = buy(client_as(owner), "+442079460001", 12).json()

    assert (body["price"], body["currency"], body["months"]) == ("16.9900", "EUR", 12)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("020 7946 0958", "+442079460958"),  # national, read in the company's country (GB)
        ("+44 20 7946 0958", "+442079460958"),  # international with spaces
        ("+442079460958", "+442079460958"),  # E.164
        ("0044 20 7946 0958", "+442079460958"),  # international with the 00 prefix
    ],
)
def test_national_and_international_input_find_the_same_number(company, owner, typed, expected) -> None:
    OnlineNumberFactory(number="+442079460958")

    response = buy(client_as(owner), typed)

    assert response.status_code == 201, response.json()
    assert response.json()["number"] == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("not a number", "is not a phone number"),
        ("+44207", "is too short"),
        ("+44 20 7946 09581", "is too long"),
        ("+44 20 7946 095", "is not a valid number"),
        ("", "This field may not be blank."),
    ],
)
def test_invalid_or_impossible_numbers_are_field_errors(company, owner, typed, message) -> None:
    response = buy(client_as(owner), typed)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert message in body["errors"]["number"][0]
    assert not NumberSubscription.objects.exists()


def test_a_premium_rate_number_is_never_for_sale(company, owner) -> None:
    # Valid, but premium-rate numbers are refused by the stock import, so never in stock.
    response = buy(client_as(owner), "+44 909 879 0000")

    assert response.status_code == 400
    assert response.json()["code"] == "not_in_stock"
    assert "not one of our numbers" in response.json()["errors"]["number"][0]


@pytest.mark.parametrize("months", [1, 6, 24, "three"])
def test_the_term_is_3_or_12_months(company, owner, months) -> None:
    OnlineNumberFactory(number="+442079460958")

    response = buy(client_as(owner), "+442079460958", months)

    assert response.status_code == 400
    assert "months" in response.json()["errors"]
    assert not NumberSubscription.objects.exists()


def test_the_service_refuses_other_terms_too(company, owner) -> None:
    stock = OnlineNumberFactory()

    with pytest.raises(ApplicationError) as error:
        number_buy(actor=Actor(user=owner), company=company, number=str(stock.number), months=6, auto_renew=True)

    assert error.value.errors == {"months": ["Choose 3 or 12 months."]}


def test_a_number_someone_holds_is_a_conflict_and_your_own_says_so(company, owner, other_company) -> None:
    OnlineNumberFactory(number="+442079460958")
    theirs = member(other_company)
    assert buy(client_as(theirs), "+442079460958").status_code == 201

    taken = buy(client_as(owner), "+442079460958")
    again = buy(client_as(theirs), "+442079460958")

    assert taken.status_code == 409
    assert taken.json()["code"] == "not_available"
    assert "someone else" in taken.json()["errors"]["number"][0]
    assert again.status_code == 409
    assert again.json()["code"] == "already_yours"
    assert Charge.objects.count() == 1


def test_a_quarantined_number_cannot_be_bought(company, owner) -> None:
    OnlineNumberFactory(number="+442079460958", status="quarantine", quarantine_until=datetime(2099, 1, 1, tzinfo=UTC))

    response = buy(client_as(owner), "+442079460958")

    assert response.status_code == 409
    assert response.json()["code"] == "not_available"


def test_buying_assigns_to_a_business_account_of_the_company_only(company, owner, other_company) -> None:
    OnlineNumberFactory(number="+442079460958")
    OnlineNumberFactory(number="+442079460959")
    mine = BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")
    theirs = BusinessAccount.objects.create(company=other_company, name="their.line", display_name="Theirs")
    client = client_as(owner)

    refused = buy(client, "+442079460958", business_account=str(theirs.public_id))
    bought = buy(client, "+442079460959", business_account=str(mine.public_id))

    assert refused.status_code == 400
    assert "business_account" in refused.json()["errors"]
    assert OnlineNumber.objects.get(number="+442079460958").status == "available"
    assert bought.status_code == 201
    assert bought.json()["business_account"] == str(mine.public_id)
    assert bought.json()["business_account_name"] == "sales.line"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
def test_only_roles_that_manage_the_service_buy(company, owner, role) -> None:
    OnlineNumberFactory(number="+442079460958")
    client = client_as(member(company, role))

    assert client.get("/api/v1/numbers/").status_code == 200
    assert client.get("/api/v1/numbers/available/").status_code == 200
    response = buy(client, "+442079460958")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db(transaction=True)
def test_two_companies_buying_the_same_number_at_once_get_one_winner() -> None:
    first = Company.objects.create(name="First Ltd", country="GB", currency="GBP")
    second = Company.objects.create(name="Second Ltd", country="GB", currency="USD")
    buyers = [(first, member(first)), (second, member(second))]
    OnlineNumberFactory(number="+442079460958")

    def attempt(company, user) -> str:
        number_buy(actor=Actor(user=user), company=company, number="+442079460958", months=3, auto_renew=True)
        return "ok"

    results = run_concurrently(*[partial(attempt, *buyer) for buyer in buyers], catch=(ApplicationError,))
    outcomes = [f"{r.status_code} {r.code}" if isinstance(r, ApplicationError) else r for r in results]

    assert sorted(outcomes) == ["409 not_available", "ok"]
    assert NumberSubscription.objects.filter(status="active").count() == 1
    assert Charge.objects.count() == 1
    assert OnlineNumber.objects.get().status == "active"


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (datetime(2027, 1, 15, 8, 0, tzinfo=UTC), 3, datetime(2027, 4, 15, 8, 0, tzinfo=UTC)),
        (datetime(2027, 1, 31, 8, 0, tzinfo=UTC), 3, datetime(2027, 4, 30, 8, 0, tzinfo=UTC)),
        (datetime(2027, 11, 30, 8, 0, tzinfo=UTC), 3, datetime(2028, 2, 29, 8, 0, tzinfo=UTC)),
        (datetime(2027, 12, 31, 23, 59, tzinfo=UTC), 12, datetime(2028, 12, 31, 23, 59, tzinfo=UTC)),
        (datetime(2028, 2, 29, 0, 0, tzinfo=UTC), 12, datetime(2029, 2, 28, 0, 0, tzinfo=UTC)),
    ],
)
def test_periods_are_calendar_months_kept_within_short_months(start, months, end) -> None:
    assert add_months(start, months) == end


def test_a_period_cut_short_by_a_short_month_returns_to_its_day_afterwards() -> None:
    assert add_months(datetime(2027, 4, 30, tzinfo=UTC), 3, day=31) == datetime(2027, 7, 31, tzinfo=UTC)
