from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.audit.models import AuditEvent
from apps.companies.models import Membership, Role
from apps.companies.services import membership_remove
from apps.core.actor import Actor
from tests.conftest import client_as
from tests.factories import api_key_for, member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_key_created_in_the_api_is_shown_once_and_then_authenticates(company, owner) -> None:
    response = client_as(owner).post("/api/v1/api-keys/", {"name": "CRM", "role": "viewer"})

    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith(body["prefix"] + "_")
    listed = client_as(owner).get("/api/v1/api-keys/").json()["results"]
    assert "key" not in listed[0]
    detail = client_as(owner).get(f"/api/v1/api-keys/{body['id']}/").json()
    assert "key" not in detail

    company_response = bearer(key).get("/api/v1/company/")
    assert company_response.status_code == 200
    assert company_response.json()["name"] == company.name
    assert company_response.json()["your_role"] == "viewer"


def test_the_plain_key_is_stored_nowhere_in_the_database(company, owner) -> None:
    _, key = api_key_for(company, Role.ADMIN, creator=owner)
    bearer(key).get("/api/v1/company/")
    secret_part = key.split("_", 2)[2]  # sm_<prefix>_<secret>; the secret itself may hold "_"

    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb')"
        )
        for table, column in cursor.fetchall():
            query = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s'  # noqa: S608 - names from the catalog
            cursor.execute(query, [f"%{secret_part}%"])
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    assert hits == []


def test_a_revoked_key_stops_working_at_once(company, owner) -> None:
    api_key, key = api_key_for(company, Role.ADMIN, creator=owner)
    assert bearer(key).get("/api/v1/company/").status_code == 200

    revoke = client_as(owner).delete(f"/api/v1/api-keys/{api_key.public_id}/")
    response = bearer(key).get("/api/v1/company/")

    assert (revoke.status_code, revoke.content) == (204, b"")
    assert client_as(owner).get(f"/api/v1/api-keys/{api_key.public_id}/").json()["revoked_at"] is not None
    assert response.status_code == 401
    assert response.json() == {"detail": "This API key was revoked.", "code": "authentication_failed", "errors": {}}


@pytest.mark.parametrize(
    "header",
    ["Bearer sm_00000000_wrong", "Bearer", "Bearer a b", "Bearer sm_deadbeef_" + "x" * 43],
)
def test_a_wrong_or_malformed_key_is_401(company, header) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/company/")

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code", "errors"}


def test_a_key_for_one_company_with_a_guessed_prefix_and_another_secret_fails(company, owner) -> None:
    api_key, _key = api_key_for(company, Role.ADMIN, creator=owner)

    response = bearer(f"{api_key.prefix}_{'A' * 43}").get("/api/v1/company/")

    assert response.status_code == 401


def test_keys_are_managed_only_from_a_signed_in_session(company, owner) -> None:
    _, key = api_key_for(company, Role.ADMIN, creator=owner)

    assert bearer(key).get("/api/v1/api-keys/").status_code in (401, 403)
    assert bearer(key).post("/api/v1/api-keys/", {"name": "sneaky", "role": "admin"}).status_code in (401, 403)
    assert ApiKey.objects.count() == 1


def test_a_key_acts_with_its_own_role(company, owner) -> None:
    _, viewer_key = api_key_for(company, Role.VIEWER, creator=owner)

    response = bearer(viewer_key).patch("/api/v1/company/", {"name": "Renamed"})

    assert response.status_code == 403


def test_a_key_cannot_have_more_rights_than_its_creator_or_be_an_owner(company) -> None:
    billing = member(company, Role.ADMIN)
    client = client_as(billing)

    owner_key = client.post("/api/v1/api-keys/", {"name": "k", "role": "owner"})

    assert owner_key.status_code == 400
    assert "role" in owner_key.json()["errors"]


def test_last_used_time_and_address_are_recorded_at_most_once_a_minute(company, owner) -> None:
    api_key, key = api_key_for(company, Role.VIEWER, creator=owner)
    bearer(key).get("/api/v1/company/", REMOTE_ADDR="192.0.2.10")
    api_key.refresh_from_db()
    first = api_key.last_used_at
    assert first is not None
    assert api_key.last_used_ip == "192.0.2.10"

    bearer(key).get("/api/v1/company/", REMOTE_ADDR="192.0.2.11")
    api_key.refresh_from_db()
    assert api_key.last_used_at == first

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        bearer(key).get("/api/v1/company/", REMOTE_ADDR="192.0.2.12")
    api_key.refresh_from_db()
    assert api_key.last_used_at > first
    assert api_key.last_used_ip == "192.0.2.12"


def test_a_members_keys_are_revoked_when_they_leave_the_company(company, owner) -> None:
    admin = member(company, Role.ADMIN)
    _, key = api_key_for(company, Role.ADMIN, creator=admin)

    membership_remove(actor=Actor(user=owner), membership=Membership.objects.get(user=admin))

    assert bearer(key).get("/api/v1/company/").status_code == 401
    assert AuditEvent.objects.filter(company=company, action="api_key.revoked").exists()


def test_changes_made_with_a_key_are_attributed_to_the_key(company, owner) -> None:
    api_key, key = api_key_for(company, Role.ADMIN, creator=owner)

    bearer(key).patch("/api/v1/company/", {"name": "Renamed by key"})

    event = AuditEvent.objects.get(company=company, action="company.updated")
    assert event.actor_api_key == api_key
    assert api_key.prefix in event.actor_label
    assert event.changes["name"]["after"] == "Renamed by key"


def test_the_api_keys_page_shows_a_new_key_once(company, owner) -> None:
    client = client_as(owner)

    created = client.post("/api-keys/", {"name": "Billing sync", "role": "billing"}, format="multipart")
    shown = client.get(created["Location"])
    again = client.get("/api-keys/")

    key = ApiKey.objects.get(name="Billing sync")
    assert created.status_code == 302  # a reload shows the page, it does not make a second key
    assert created["Location"] == "/api-keys/"
    assert shown["Cache-Control"] == "no-store"
    html = shown.content.decode()
    assert "will not be shown again" in html
    assert f'value="{key.prefix}_' in html
    assert f"{key.prefix}_" in again.content.decode()
    assert "will not be shown again" not in again.content.decode()


def test_the_api_key_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    api_key_for(company, Role.VIEWER, creator=owner)
    client = client_as(owner)
    client.get("/api/v1/api-keys/")  # warm the session
    reasons = (*SIGNED_IN, "the count", "the page of keys")

    with expect_queries(*reasons):
        one = client.get("/api/v1/api-keys/").json()
    for role in (Role.ADMIN, Role.BILLING, Role.VIEWER, Role.ADMIN, Role.BILLING):
        api_key_for(company, role, creator=member(company, Role.ADMIN))
    with expect_queries(*reasons):
        many = client.get("/api/v1/api-keys/").json()

    assert (one["count"], many["count"]) == (1, 6)
