from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.billing.ledger.allocations import credit_allocate, profile_balance
from apps.billing.ledger.selectors import company_balance
from apps.companies.models import Role
from apps.core.actor import Actor
from tests.conftest import client_as
from tests.factories import grant, member
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


def url(profile) -> str:
    return f"/api/v1/sip-profiles/{profile.public_id}/credit/"


def test_allocating_through_the_api_returns_the_new_balance_and_history(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "100", "stripe:pi_api1")

    response = client_as(owner).post(url(profile), {"action": "allocate", "amount": "40"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["balance"] == "40.0000"
    assert body["history"][0]["amount"] == "40.0000"
    assert body["history"][0]["kind"] == "allocation"
    assert company_balance(company) == Decimal("60")
    assert AuditEvent.objects.filter(action="credit.allocated", object_id=str(profile.public_id)).exists()


def test_a_repeated_idempotency_key_moves_money_once_and_returns_the_same_result(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "100", "stripe:pi_api2")
    client = client_as(owner)

    first = client.post(url(profile), {"action": "allocate", "amount": "25"}, HTTP_IDEMPOTENCY_KEY="same")
    again = client.post(url(profile), {"action": "allocate", "amount": "25"}, HTTP_IDEMPOTENCY_KEY="same")
    other = client.post(url(profile), {"action": "allocate", "amount": "26"}, HTTP_IDEMPOTENCY_KEY="same")
    reversed_ = client.post(url(profile), {"action": "take_back", "amount": "25"}, HTTP_IDEMPOTENCY_KEY="same")

    assert first.status_code == 201
    # One contract for every Idempotency-Key (apps.billing.idempotency): the first answer replayed.
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["balance"] == "25.0000"
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert reversed_.status_code == 409
    assert profile_balance(profile) == Decimal("25")


def test_the_same_key_in_two_companies_does_not_collide(company, owner, other_company) -> None:
    profile, _ = digest_profile(company, owner)
    stranger = member(other_company)
    theirs, _ = digest_profile(other_company, stranger)
    grant(company, "50", "stripe:pi_api3")
    grant(other_company, "50", "stripe:pi_api4")

    mine = client_as(owner).post(url(profile), {"action": "allocate", "amount": "5"}, HTTP_IDEMPOTENCY_KEY="k")
    their = client_as(stranger).post(url(theirs), {"action": "allocate", "amount": "7"}, HTTP_IDEMPOTENCY_KEY="k")

    assert mine.status_code == 201
    assert their.status_code == 201


def test_more_than_the_company_holds_is_a_clear_error(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "10", "stripe:pi_api5")

    response = client_as(owner).post(url(profile), {"action": "allocate", "amount": "10.01"})
    back = client_as(owner).post(url(profile), {"action": "take_back", "amount": "1"})

    assert response.status_code == 400
    assert response.json()["code"] == "insufficient_funds"
    assert "amount" in response.json()["errors"]
    assert back.status_code == 400
    assert company_balance(company) == Decimal("10")


@pytest.mark.parametrize("amount", ["0", "-1", "x", "0.00001"])
def test_bad_amounts_are_400_with_the_field(company, owner, amount) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "10", "stripe:pi_api6")

    response = client_as(owner).post(url(profile), {"action": "allocate", "amount": amount})

    assert response.status_code == 400
    assert "amount" in response.json()["errors"]


def test_billing_members_move_credit_and_viewers_only_look(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "10", "stripe:pi_api7")
    billing = client_as(member(company, Role.BILLING))
    viewer = client_as(member(company, Role.VIEWER))

    assert billing.post(url(profile), {"action": "allocate", "amount": "1"}).status_code == 201
    assert viewer.get(url(profile)).status_code == 200
    assert viewer.post(url(profile), {"action": "allocate", "amount": "1"}).status_code == 403


def test_the_balances_endpoint_lists_the_company_and_every_profile(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    digest_profile(company, owner, name="Empty")
    grant(company, "30", "stripe:pi_api8")
    credit_allocate(actor=Actor(user=owner), profile=profile, amount="12.5", key="bal")

    body = client_as(owner).get("/api/v1/credit/").json()

    assert body["company_balance"] == "17.5000"
    assert {p["name"]: p["balance"] for p in body["profiles"]} == {"Empty": "0.0000", "Main PBX": "12.5000"}


def test_the_statement_filters_by_month_and_exports_csv(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    with time_machine.travel(datetime(2026, 10, 15, tzinfo=UTC)):
        grant(company, "100", "stripe:pi_oct")
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=UTC)):
        credit_allocate(actor=Actor(user=owner), profile=profile, amount="30", key="nov")
    client = client_as(owner)

    november = client.get("/api/v1/ledger/", {"month": "2026-11"}).json()
    bad = client.get("/api/v1/ledger/", {"month": "November"})
    exported = client.get("/credit/statement/", {"month": "2026-10", "format": "csv"})

    assert [(e["description"], e["amount"], e["balance_after"]) for e in november["results"]] == [
        ("Allocated to Main PBX", "-30.0000", "70.0000")
    ]
    assert bad.status_code == 400
    assert "month" in bad.json()["errors"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(r["description"], r["amount"], r["balance_after"]) for r in rows] == [
        ("Credit purchase", "100.0000", "100.0000")
    ]


def test_the_profile_page_moves_credit_once_even_when_the_form_is_sent_twice(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_page")
    client = client_as(owner)
    form = {"action": "allocate", "amount": "20", "key": "form-key-1"}

    client.post(f"/sip-profiles/{profile.public_id}/credit/", form, format="multipart")
    client.post(f"/sip-profiles/{profile.public_id}/credit/", form, format="multipart")
    page = client.get(f"/sip-profiles/{profile.public_id}/").content.decode()

    assert profile_balance(profile) == Decimal("20")
    assert "20.00 GBP" in page


def test_a_form_key_sent_again_with_another_amount_is_refused_with_a_message(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_page2")
    client = client_as(owner)
    url_ = f"/sip-profiles/{profile.public_id}/credit/"

    client.post(url_, {"action": "allocate", "amount": "20", "key": "form-key-2"}, format="multipart")
    changed = client.post(
        url_, {"action": "allocate", "amount": "30", "key": "form-key-2"}, format="multipart", follow=True
    )

    assert profile_balance(profile) == Decimal("20")
    assert "This Idempotency-Key was already used with other parameters." in changed.content.decode()


def test_the_ledger_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "100")
    client = client_as(owner)
    client.get("/api/v1/ledger/")  # warm the session
    reasons = (*SIGNED_IN, "the page of entries (keyset: no count)")

    with expect_queries(*reasons):
        one = client.get("/api/v1/ledger/").json()
    for n in range(6):
        grant(company, "10")
        credit_allocate(actor=Actor(user=owner), profile=profile, amount="1", key=f"ledger-list-{n}")
    with expect_queries(*reasons):
        many = client.get("/api/v1/ledger/").json()

    assert (len(one["results"]), len(many["results"])) == (1, 13)
