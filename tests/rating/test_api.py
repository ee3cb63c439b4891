from __future__ import annotations

import pytest

from apps.companies.models import Role
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.rating.factories import small_deck

pytestmark = pytest.mark.django_db


def test_the_lookup_shows_the_matched_prefix_destination_class_and_price(company, owner) -> None:
    deck = small_deck(currency="GBP", name="GBP 2026")
    client = client_as(member(company, Role.VIEWER))

    response = client.get("/api/v1/rates/lookup/", {"number": "+44 7400 123456"})

    assert response.status_code == 200
    assert response.json() == {
        "number": "+447400123456",
        "callable": True,
        "blocked": None,
        "rate": {
            "prefix": "+4474",
            "destination": "United Kingdom mobile, Vodafone",
            "country": "GB",
            "destination_class": "mobile",
            "currency": "GBP",
            "price_per_minute": "0.045000",
            "connection_fee": "0.000000",
            "first_increment": 60,
            "next_increment": 60,
            "deck": str(deck.public_id),
            "deck_name": "GBP 2026",
            "effective_from": "2026-01-01T00:00:00Z",
        },
    }


def test_the_lookup_prices_in_the_company_currency_at_the_time_asked(company, owner) -> None:
    small_deck(currency="GBP")
    from datetime import UTC, datetime
    from decimal import Decimal

    small_deck(currency="GBP", effective_from=datetime(2026, 3, 1, tzinfo=UTC), markup=Decimal(1))
    small_deck(currency="USD")
    client = client_as(owner)

    march = client.get("/api/v1/rates/lookup/", {"number": "020 7946 0958", "at": "2026-03-01T00:00:00Z"}).json()
    february = client.get("/api/v1/rates/lookup/", {"number": "020 7946 0958", "at": "2026-02-28T23:00:00Z"}).json()

    assert (march["rate"]["currency"], march["rate"]["price_per_minute"]) == ("GBP", "1.008000")
    assert february["rate"]["price_per_minute"] == "0.008000"


@pytest.mark.parametrize(
    ("number", "kind"),
    [("999", "emergency"), ("112", "emergency"), ("+1 900 555 0123", "premium_rate"), ("118 118", "special_service")],
)
def test_a_blocked_number_is_shown_with_its_reason_and_no_price(company, owner, number: str, kind: str) -> None:
    small_deck(rows=[("1", "North America", "US", "landline", "0.005"), ("44", "UK", "GB", "landline", "0.01")])

    body = client_as(owner).get("/api/v1/rates/lookup/", {"number": number}).json()

    assert body["callable"] is False
    assert body["rate"] is None
    assert body["blocked"]["kind"] == kind
    assert body["blocked"]["reason"]


def test_lookup_errors_have_the_api_error_shape(company, owner, api) -> None:
    small_deck(rows=[("44", "UK", "GB", "landline", "0.01")])
    client = client_as(owner)

    missing = client.get("/api/v1/rates/lookup/")
    invalid = client.get("/api/v1/rates/lookup/", {"number": "+44 20 12"})
    bad_time = client.get("/api/v1/rates/lookup/", {"number": "+442079460958", "at": "yesterday"})
    unpriced = client.get("/api/v1/rates/lookup/", {"number": "+33 1 23 45 67 89"})
    anonymous = api.get("/api/v1/rates/lookup/", {"number": "+442079460958"})

    assert missing.status_code == 400
    assert missing.json() == {
        "detail": "This field is required.",
        "code": "invalid",
        "errors": {"number": ["This field is required."]},
    }
    assert invalid.status_code == 400
    assert invalid.json()["errors"]["number"] == [invalid.json()["detail"]]
    assert bad_time.status_code == 400
    assert list(bad_time.json()["errors"]) == ["at"]
    assert unpriced.status_code == 404
    assert unpriced.json() == {
        "detail": "No GBP rate covers +33123456789.",
        "code": "no_rate",
        "errors": {"number": ["No GBP rate covers +33123456789."]},
    }
    assert anonymous.status_code in (401, 403)
    assert set(anonymous.json()) == {"detail", "code", "errors"}


def test_the_lookup_takes_a_fixed_number_of_queries(company, owner) -> None:
    small_deck()
    client = client_as(owner)
    client.get("/api/v1/rates/lookup/", {"number": "+447400123456"})  # warm the session

    with expect_queries(
        *SIGNED_IN,
        "the blocked-prefix rules that could match",
        "the longest-prefix rate with its deck (the deck in force is a subquery)",
    ):
        response = client.get("/api/v1/rates/lookup/", {"number": "+447400123456"})

    assert response.status_code == 200


def test_the_rates_page_shows_the_match_or_why_the_number_is_blocked(company, owner) -> None:
    small_deck()
    client = client_as(owner)

    empty = client.get("/rates/")
    priced = client.get("/rates/", {"number": "020 7946 0958"}).content.decode()
    blocked = client.get("/rates/", {"number": "999"}).content.decode()
    invalid = client.get("/rates/", {"number": "12"}).content.decode()

    assert empty.status_code == 200
    assert 'id="rate-match"' in priced
    assert "+4420" in priced
    assert "United Kingdom, London" in priced
    assert "0.008000 GBP" in priced
    assert 'id="rate-blocked"' in blocked
    assert "Emergency services (999)" in blocked
    assert 'class="error"' in invalid
    assert 'id="rate-match"' not in invalid
