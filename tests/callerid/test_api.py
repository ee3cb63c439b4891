"""The caller ID API: /api/v1/caller-ids/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from apps.callerid.models import Landline
from apps.callerid.services import landline_reject
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from tests.callerid.factories import LANDLINE, landline, pdf, verify
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db

URL = "/api/v1/caller-ids/"


def online_number(company, number: str, country: str) -> NumberSubscription:
    now = timezone.now()
    prices = {f"price_{m}m_{c}": Decimal("5") for m in (3, 12) for c in ("usd", "eur", "gbp")}
    stock = OnlineNumber.objects.create(
        number=number, country=country, area="Capital", number_type="geographic", status="active", **prices
    )
    return NumberSubscription.objects.create(
        company=company,
        number=stock,
        months=12,
        price=Decimal("5"),
        currency=company.currency,
        current_period_start=now,
        current_period_end=now + timedelta(days=365),
    )


def test_registering_a_landline_takes_a_number_and_a_proof(company, owner) -> None:
    verify(company)

    response = client_as(owner).post(URL, {"number": "020 7946 0958", "proof": pdf()}, format="multipart")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == LANDLINE
    assert body["status"] == "pending"
    assert body["proof_name"] == "phone-bill.pdf"
    assert body["expires_at"] is None
    assert set(body) == {
        "id",
        "number",
        "status",
        "reason",
        "proof_name",
        "submitted_at",
        "verified_at",
        "expires_at",
    }


def test_an_unverified_company_gets_a_clear_error_on_number(company, owner) -> None:
    response = client_as(owner).post(URL, {"number": LANDLINE, "proof": pdf()}, format="multipart")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "not_verified"
    assert "verified" in body["errors"]["number"][0]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"number": "0901 234 5678"}, "number"),
        ({"number": "07400 123456"}, "number"),
        ({"number": "12"}, "number"),
        ({"proof": "not a file"}, "number"),
        ({"number": LANDLINE}, "proof"),
    ],
)
def test_bad_input_is_a_field_error(company, owner, data, field) -> None:
    verify(company)
    payload = dict(data)
    if field == "number" and "proof" not in payload:
        payload["proof"] = pdf()

    response = client_as(owner).post(URL, payload, format="multipart")

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Landline.objects.exists()


def test_status_is_read_only(company, owner) -> None:
    verify(company)

    response = client_as(owner).post(
        URL, {"number": LANDLINE, "proof": pdf(), "status": "verified"}, format="multipart"
    )

    assert response.json()["status"] == "pending"


def test_the_list_shows_status_reason_and_expiry(company, owner, staff) -> None:
    verify(company)
    verified = landline(company, owner, approved_by=staff)
    rejected = landline(company, owner, "+442079460959")
    landline_reject(actor=Actor(user=staff), landline=rejected, reason="Wrong company name on the bill.")

    body = client_as(owner).get(URL).json()

    by_number = {row["number"]: row for row in body["results"]}
    assert by_number[LANDLINE]["status"] == "verified"
    assert by_number[LANDLINE]["expires_at"] is not None
    assert by_number["+442079460959"]["reason"] == "Wrong company name on the bill."
    assert client_as(owner).get(f"{URL}{verified.public_id}/").json()["status"] == "verified"


def test_the_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    verify(company)
    for n in range(12):
        landline(company, owner, f"+4420794609{n:02d}")
    client = client_as(owner)
    client.get(URL)  # warm the session

    with expect_queries(*SIGNED_IN, "the count", "the page of landlines"):
        response = client.get(URL)

    assert response.json()["count"] == 12


def test_delete_withdraws_and_keeps_the_row(company, owner) -> None:
    verify(company)
    registered = landline(company, owner)

    response = client_as(owner).delete(f"{URL}{registered.public_id}/")
    again = client_as(owner).delete(f"{URL}{registered.public_id}/")

    assert (response.status_code, response.content) == (204, b"")
    assert again.status_code == 400
    assert again.json()["code"] == "not_live"
    assert Landline.objects.get().status == "withdrawn"


def test_options_list_online_numbers_in_supported_countries_and_verified_landlines(company, owner, staff) -> None:
    verify(company)
    online_number(company, "+442071234567", "GB")
    online_number(company, "+551134567890", "BR")  # Brazil is not a caller ID country
    landline(company, owner, approved_by=staff)
    landline(company, owner, "+442079460959")  # still pending

    response = client_as(member(company, Role.VIEWER)).get(f"{URL}options/")

    assert response.status_code == 200
    assert response.json() == [
        {"number": "+442071234567", "kind": "online_number", "label": "+442071234567 (Online Number, Capital)"},
        {"number": LANDLINE, "kind": "landline", "label": f"{LANDLINE} (your landline)"},
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
def test_members_without_service_rights_read_but_do_not_write(company, owner, role) -> None:
    verify(company)
    registered = landline(company, owner)
    client = client_as(member(company, role))

    assert client.get(URL).status_code == 200
    assert client.post(URL, {"number": "+442079460959", "proof": pdf()}, format="multipart").status_code == 403
    assert client.delete(f"{URL}{registered.public_id}/").status_code == 403
    assert Landline.objects.get().status == "pending"


def test_another_companys_landline_is_404(company, owner, other_company) -> None:
    verify(other_company)
    theirs = landline(other_company, member(other_company))
    client = client_as(owner)

    assert client.get(f"{URL}{theirs.public_id}/").status_code == 404
    assert client.delete(f"{URL}{theirs.public_id}/").status_code == 404
    assert client.get(URL).json()["count"] == 0
    assert Landline.objects.get().status == "pending"


def test_the_schema_describes_the_endpoints(db) -> None:
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    assert {"/api/v1/caller-ids/", "/api/v1/caller-ids/{id}/", "/api/v1/caller-ids/options/"} <= set(schema["paths"])
    post = schema["paths"]["/api/v1/caller-ids/"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
