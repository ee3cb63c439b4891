from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import number_buy
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.helpers.confirm import post_confirmed
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(db) -> list[OnlineNumber]:
    return [
        OnlineNumberFactory(number="+442079460958", area="London", price_3m_gbp=Decimal("4.25")),
        OnlineNumberFactory(number="+442030001234", area="London"),
        OnlineNumberFactory(number="+12125550123", country="US", area="New York"),
    ]


def test_the_page_lists_the_company_numbers_and_offers_numbers_in_its_country(company, owner, stock) -> None:
    number_buy(actor=Actor(user=owner), company=company, number="+442030001234", months=12, auto_renew=True)

    page = client_as(owner).get("/numbers/").content.decode()

    assert 'id="numbers"' in page
    assert "+442030001234" in page
    assert "12 months" in page
    # The first visit searches the company's own country (GB): New York is not offered.
    assert "+442079460958" in page
    assert "+12125550123" not in page
    assert "Buy for 3 months · 4.25 GBP" in page
    assert "Buy for 12 months · 14.00 GBP" in page


def test_the_search_answers_htmx_with_the_results_only(company, owner, stock) -> None:
    response = client_as(owner).get(
        "/numbers/", {"country": "US", "area": "", "contains": "555", "type": ""}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="available-numbers"' in html
    assert "+12125550123" in html
    assert "+442079460958" not in html


def test_bad_search_digits_are_shown_inline(company, owner, stock) -> None:
    page = client_as(owner).get("/numbers/", {"country": "", "contains": "12ab"}).content.decode()
    partial = client_as(owner).get("/numbers/", {"contains": "12ab"}, HTTP_HX_REQUEST="true").content.decode()

    assert 'id="id_contains_error"' in page
    assert "Enter digits only" in page
    assert "Digits: Enter digits only" in partial


def test_buying_from_the_page_leads_to_the_number(company, owner, stock) -> None:
    amount, response = post_confirmed(
        client_as(owner), "/numbers/", {"number": "+442079460958", "months": "3", "auto_renew": "on", "country": "GB"}
    )

    subscription = NumberSubscription.objects.get(company=company)
    assert response.status_code == 302
    assert response["Location"] == f"/numbers/{subscription.public_id}/"
    assert (subscription.months, subscription.auto_renew, subscription.price) == (3, True, Decimal("4.25"))
    assert amount == Decimal("4.25")
    detail = client_as(owner).get(response["Location"]).content.decode()
    assert "4.25 GBP" in detail
    assert 'id="charges"' in detail


def test_a_failed_purchase_shows_the_error_and_keeps_the_search(company, owner, stock, other_company) -> None:
    number_buy(
        actor=Actor(user=member(other_company)),
        company=other_company,
        number="+442079460958",
        months=3,
        auto_renew=True,
    )

    search = {"country": "GB", "area": "Lond", "contains": "", "type": ""}
    response = client_as(owner).post(
        "/numbers/", {"number": "+442079460958", "months": "12", **search}, format="multipart"
    )

    html = response.content.decode()
    assert response.status_code == 409
    assert 'id="buy-errors"' in html
    assert "someone else has just taken it" in html
    assert 'value="Lond"' in html  # the search form is filled in as it was
    assert "+442030001234" in html  # and its results are still there
    assert not NumberSubscription.objects.filter(company=company).exists()


def test_assigning_renewal_and_release_from_the_page(company, owner, stock) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True
    )
    account = BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")
    client = client_as(owner)

    assigned = client.post(
        f"/numbers/{subscription.public_id}/assign/", {"business_account": str(account.public_id)}, format="multipart"
    )
    renew_off = client.post(f"/numbers/{subscription.public_id}/auto-renew/", {"back": "detail"}, format="multipart")
    subscription.refresh_from_db()
    assert (subscription.business_account, subscription.auto_renew) == (account, False)
    assert assigned["Location"] == "/numbers/"
    assert renew_off["Location"] == f"/numbers/{subscription.public_id}/"
    page = client.get("/numbers/").content.decode()
    assert f'<option value="{account.public_id}" selected>' in page
    assert "Turn on" in page

    released = client.post(f"/numbers/{subscription.public_id}/release/")

    assert released["Location"] == "/numbers/"
    subscription.refresh_from_db()
    assert subscription.status == "ended"
    assert "was released" in client.get("/numbers/").content.decode()


def test_an_account_of_another_company_is_refused_with_a_message(company, owner, stock, other_company) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True
    )
    theirs = BusinessAccount.objects.create(company=other_company, name="their.line", display_name="Theirs")
    client = client_as(owner)

    client.post(
        f"/numbers/{subscription.public_id}/assign/", {"business_account": str(theirs.public_id)}, format="multipart"
    )

    subscription.refresh_from_db()
    assert subscription.business_account is None
    assert "Choose a business account of your company." in client.get("/numbers/").content.decode()


def test_a_viewer_sees_the_page_without_forms_and_cannot_post(company, owner, stock) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True
    )
    client = client_as(member(company, Role.VIEWER))

    page = client.get("/numbers/").content.decode()

    assert "+442079460958" in page
    assert "Buy for 3 months" not in page
    assert "Release" not in page
    assert client.post(f"/numbers/{subscription.public_id}/release/").status_code == 403
    assert client.post("/numbers/", {"number": "+442030001234", "months": "3"}, format="multipart").status_code == 403


def test_another_companys_number_pages_are_404(owner) -> None:
    other = CompanyFactory()
    OnlineNumberFactory(number="+442079460958")
    theirs = number_buy(
        actor=Actor(user=member(other)), company=other, number="+442079460958", months=3, auto_renew=True
    )
    client = client_as(owner)

    assert client.get(f"/numbers/{theirs.public_id}/").status_code == 404
    for action in ("assign", "auto-renew", "release"):
        assert client.post(f"/numbers/{theirs.public_id}/{action}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "active"


def test_the_page_takes_a_fixed_number_of_queries(company, owner) -> None:
    for _ in range(10):
        number_buy(
            actor=Actor(user=owner),
            company=company,
            number=str(OnlineNumberFactory().number),
            months=3,
            auto_renew=True,
        )
    for _ in range(10):
        OnlineNumberFactory()
    client = client_as(owner)
    client.get("/numbers/")

    with expect_queries(
        *SIGNED_IN,
        "the business accounts for the selects",
        "the count of the search",
        "the page of the search",
        "the active numbers, joined with stock and accounts",
        "the ended numbers, joined with stock and accounts",
        "the user's companies for the layout's switcher",
    ):
        client.get("/numbers/")


def test_an_ended_number_page_shows_its_history(company, owner, stock) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True
    )
    client = client_as(owner)
    client.post(f"/numbers/{subscription.public_id}/release/")

    page = client.get(f"/numbers/{subscription.public_id}/").content.decode()
    listing = client.get("/numbers/").content.decode()

    assert "Ended" in page
    assert "Release +442079460958" not in page
    assert 'id="ended-numbers"' in listing
    assert datetime.now(UTC).strftime("%Y") in page


def test_turning_auto_renew_on_is_confirmed_at_its_price_and_acts_once(company, owner, stock) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=False
    )
    client = client_as(owner)
    url = f"/numbers/{subscription.public_id}/auto-renew/"
    form = {"auto_renew": "on", "back": "detail", "once": "renew-token-1"}

    step = client.post(url, form, format="multipart")

    assert step.status_code == 200
    html = step.content.decode()
    assert "Renew +442079460958 for 3 months" in html
    assert "4.25 GBP" in html  # the term's price
    assert 'id="quote-balance-now"' in html
    assert 'id="quote-balance-after"' in html
    subscription.refresh_from_db()
    assert not subscription.auto_renew  # nothing changed before the confirmation
    fingerprint = re.search(r'name="confirm" value="([0-9a-f]+)"', html)
    assert fingerprint

    confirmed = {**form, "confirm": fingerprint.group(1)}
    done = client.post(url, confirmed, format="multipart")
    again = client.post(url, confirmed, format="multipart")

    assert done.status_code == 302
    assert done["Location"] == f"/numbers/{subscription.public_id}/"
    assert again.status_code == 302
    subscription.refresh_from_db()
    assert subscription.auto_renew
    assert AuditEvent.objects.filter(action="number.auto_renew_changed", company=company).count() == 1
    assert "was done once" in client.get(again["Location"]).content.decode()
    # Turning it off costs nothing: no step, at once, once.
    off = {"back": "detail", "once": "renew-token-2"}
    assert client.post(url, off, format="multipart").status_code == 302
    assert client.post(url, off, format="multipart").status_code == 302
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert AuditEvent.objects.filter(action="number.auto_renew_changed", company=company).count() == 2


def test_assigning_and_releasing_a_number_act_once(company, owner, stock) -> None:
    subscription = number_buy(
        actor=Actor(user=owner), company=company, number="+442079460958", months=3, auto_renew=True
    )
    sales = BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")
    support = BusinessAccount.objects.create(company=company, name="support.line", display_name="Support")
    client = client_as(owner)
    page = client.get(f"/numbers/{subscription.public_id}/").content.decode()
    assert page.count('name="once"') >= 3  # assign, auto-renew, release

    url = f"/numbers/{subscription.public_id}/assign/"
    first = client.post(url, {"business_account": str(sales.public_id), "once": "assign-1"}, format="multipart")
    second = client.post(url, {"business_account": str(support.public_id), "once": "assign-1"}, format="multipart")
    assert (first.status_code, second.status_code) == (302, 302)
    subscription.refresh_from_db()
    assert subscription.business_account == sales
    assert "was done once" in client.get(second["Location"]).content.decode()

    release = f"/numbers/{subscription.public_id}/release/"
    assert client.post(release, {"once": "release-1"}, format="multipart").status_code == 302
    again = client.post(release, {"once": "release-1"}, format="multipart")
    assert again.status_code == 302
    assert "was done once" in client.get(again["Location"]).content.decode()
    assert AuditEvent.objects.filter(company=company, action="number.released").count() == 1
    subscription.refresh_from_db()
    assert subscription.status == "ended"
