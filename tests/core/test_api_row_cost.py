"""What the API's lists and summaries cost per row (issue 15, "cut the per-row cost"): each
reads only what it shows, the related rows of a page in one query each, and makes the same
queries for one row as for many. The output written from plain dicts is what DRF's fields
would write (the schema's shapes stay true: tests/core/test_schemathesis.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rest_framework import serializers

from apps.audit.services import audit_record
from apps.billing.ledger.selectors import company_balance
from apps.business_accounts.models import BusinessAccount
from apps.core.actor import Actor
from apps.core.fields import decimal_text, iso_datetime
from apps.sip_profiles.api import SipProfileOutputSerializer
from apps.sip_profiles.services import sip_profile_update
from tests.conftest import client_as
from tests.factories import grant, move_profile_balance
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.numbers.factories import OnlineNumberFactory
from tests.sip_profiles.factories import held_number, ip_profile

pytestmark = pytest.mark.django_db

PROFILE_DETAILS = (
    "the profiles' addresses, all at once",
    "their business accounts, all at once",
    "their provisioning on each edge node, all at once",
)


def _profiles(company, owner, count: int, start: int = 0) -> list:
    made = []
    for n in range(start, start + count):
        profile = ip_profile(company, owner, address=f"192.0.2.{n + 1}", name=f"PBX {n:02d}")
        BusinessAccount.objects.create(
            company=company, name=f"line{n}.sales", display_name="Sales", sip_profile=profile, signin_enabled=False
        )
        made.append(profile)
    return made


def test_the_profile_list_makes_the_same_queries_for_one_profile_as_for_many(company, owner) -> None:
    _profiles(company, owner, 1)
    client = client_as(owner)
    client.get("/api/v1/sip-profiles/")  # warm the session
    reasons = (*SIGNED_IN, "the count", "the page, with each caller ID's E.164 joined in", *PROFILE_DETAILS)

    with expect_queries(*reasons):
        one = client.get("/api/v1/sip-profiles/").json()
    _profiles(company, owner, 11, start=1)
    with expect_queries(*reasons):
        many = client.get("/api/v1/sip-profiles/").json()

    assert (one["count"], many["count"]) == (1, 12)
    first = many["results"][0]
    assert first["name"] == "PBX 00"
    assert first["allowed_ips"] == [{"address": "192.0.2.1/32", "port": 5060, "transport": "udp"}]
    assert first["business_accounts"] == ["line0.sales"]
    assert set(first) == set(SipProfileOutputSerializer().fields)


def test_a_profile_reads_its_caller_id_and_related_rows_in_a_fixed_number_of_queries(company, owner) -> None:
    plain, busy = _profiles(company, owner, 2)
    subscription = held_number(company, "+442079460001")
    sip_profile_update(
        actor=Actor(user=owner),
        profile=busy,
        caller_id="+442079460001",
        allowed_ips=[{"address": "192.0.2.77"}, {"address": "192.0.2.78", "transport": "tcp"}],
    )
    for n in range(4):
        BusinessAccount.objects.create(
            company=company, name=f"extra{n}.line", display_name="X", sip_profile=busy, signin_enabled=False
        )
    client = client_as(owner)
    client.get("/api/v1/sip-profiles/")  # warm the session
    reasons = (*SIGNED_IN, "the profile, with its caller ID's E.164 joined in", *PROFILE_DETAILS)

    with expect_queries(*reasons):
        one = client.get(f"/api/v1/sip-profiles/{plain.public_id}/").json()
    with expect_queries(*reasons):
        many = client.get(f"/api/v1/sip-profiles/{busy.public_id}/").json()

    assert one["caller_id"] is None
    assert many["caller_id"] == str(subscription.number.number) == "+442079460001"
    assert many["business_accounts"] == ["extra0.line", "extra1.line", "extra2.line", "extra3.line", "line1.sales"]
    assert many["created_at"].endswith("Z")


def test_an_unknown_profile_is_a_404(company, owner) -> None:
    response = client_as(owner).get("/api/v1/sip-profiles/6f1c2a52-8d0e-4a8e-9a51-2f0f4b1c9d11/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code", "errors"}


def test_the_balances_make_the_same_queries_for_one_profile_as_for_many(company, owner) -> None:
    grant(company, "100")
    (first,) = _profiles(company, owner, 1)
    move_profile_balance(first, "12.5")
    client = client_as(owner)
    client.get("/api/v1/credit/")  # warm the session
    reasons = (*SIGNED_IN, "the company's and every profile's balance, in one", "the live profiles' ids and names")

    with expect_queries(*reasons):
        one = client.get("/api/v1/credit/").json()
    # What was granted, less the profile's first channel (prorated).
    balance_then = company_balance(company)
    _profiles(company, owner, 9, start=1)
    with expect_queries(*reasons):
        many = client.get("/api/v1/credit/").json()

    assert one == {
        "currency": company.currency,
        "company_balance": f"{balance_then:f}",
        "profiles": [{"id": str(first.public_id), "name": "PBX 00", "balance": "12.5000"}],
    }
    assert len(many["profiles"]) == 10
    assert many["profiles"][1]["balance"] == "0.0000"


def test_the_audit_list_makes_the_same_queries_for_one_event_as_for_many(company, owner) -> None:
    client = client_as(owner)
    client.get("/api/v1/audit-events/", {"action_prefix": "test."})  # warm the session
    audit_record(actor=Actor(user=owner), action="test.0", company=company, changes={"n": 0})
    reasons = (*SIGNED_IN, "the page of events (keyset: no count)")

    with expect_queries(*reasons):
        one = client.get("/api/v1/audit-events/", {"action_prefix": "test."}).json()
    for n in range(1, 40):
        audit_record(actor=Actor(user=owner), action=f"test.{n}", company=company)
    with expect_queries(*reasons):
        many = client.get("/api/v1/audit-events/", {"action_prefix": "test."}).json()

    assert [e["action"] for e in one["results"]] == ["test.0"]
    assert one["results"][0]["actor_type"] == "user"
    assert one["results"][0]["changes"] == {"n": 0}
    assert len(many["results"]) == 40


def test_the_stock_search_makes_the_same_queries_for_one_number_as_for_many(company, owner) -> None:
    OnlineNumberFactory()
    client = client_as(owner)
    client.get("/api/v1/numbers/available/")  # warm the session
    reasons = (*SIGNED_IN, "the count", "the page of stock")

    with expect_queries(*reasons):
        one = client.get("/api/v1/numbers/available/", {"country": "GB"}).json()
    for _ in range(30):
        OnlineNumberFactory()
    with expect_queries(*reasons):
        many = client.get("/api/v1/numbers/available/", {"country": "GB"}).json()

    assert (one["count"], many["count"]) == (1, 31)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 12, 0, 0, 1234, tzinfo=UTC),
        datetime(2026, 6, 1, 9, 30, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 6, 1, 9, 30),  # noqa: DTZ001  (a naive value is read as UTC, as DRF reads it)
        None,
    ],
)
def test_a_timestamp_is_written_as_drf_writes_it_without_its_time_zone_look_up(value) -> None:
    assert iso_datetime(value) == serializers.DateTimeField().to_representation(value)


@pytest.mark.parametrize("value", ["0.0000", "-12.5000", "9999999999.9900", "0.000100"])
def test_an_amount_is_written_as_drf_writes_it(value) -> None:
    places = len(value.partition(".")[2])
    field = serializers.DecimalField(max_digits=16, decimal_places=places)

    assert decimal_text(Decimal(value)) == field.to_representation(Decimal(value)) == value
