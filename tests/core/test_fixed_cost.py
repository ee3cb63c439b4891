"""What every API request costs before its view runs (issue 15, "cut the fixed cost"): a key
this process verified seconds ago is answered from memory (no query), its last use is written
at most once a minute, the rate limit is one Redis round trip, and a connection that served a
request a moment ago is not probed with `SELECT 1`. A revoked key still stops within seconds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import override_settings
from django.utils import timezone
from redis.connection import Connection
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.companies.models import Role
from apps.core import middleware
from tests.factories import api_key_for
from tests.helpers.queries import expect_queries

pytestmark = pytest.mark.django_db

URL = "/api/v1/company/"


def bearer(key: str) -> APIClient:
    client = APIClient(REMOTE_ADDR="192.0.2.7")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def get(client: APIClient) -> Any:
    # What Django does at the start of every request (the test client leaves it out).
    connection.health_check_done = False
    return client.get(URL)


def test_a_polling_key_is_looked_up_and_its_use_recorded_once_then_costs_no_query(company, owner) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)

    view = "the company's purchase policy (the view's own query)"
    with expect_queries("the key with its company and creator", "its last use (once a minute)", view):
        first = get(client)
    with expect_queries(view, view, view):
        again = [get(client) for _ in range(3)]

    assert first.status_code == 200
    assert [r.status_code for r in again] == [200] * 3
    assert again[-1].json() == first.json()


@override_settings(API_KEY_CACHE_SECONDS=1)
def test_a_key_revoked_by_another_process_stops_working_within_seconds(company, owner) -> None:
    api_key, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)
    assert get(client).status_code == 200

    # Revoked as another process would: this one's memory is not told.
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    still = get(client)
    time.sleep(1.1)
    after = get(client)

    assert still.status_code == 200  # from memory, for at most API_KEY_CACHE_SECONDS
    assert after.status_code == 401
    assert after.json()["detail"] == "This API key was revoked."


@override_settings(API_KEY_CACHE_SECONDS=1)
def test_a_key_whose_creator_was_deactivated_elsewhere_stops_working_within_seconds(company, owner) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)
    assert get(client).status_code == 200

    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    time.sleep(1.1)

    assert get(client).status_code == 401


def test_a_wrong_secret_with_a_known_prefix_is_never_answered_from_memory(company, owner) -> None:
    api_key, key = api_key_for(company, Role.VIEWER, creator=owner)
    assert get(bearer(key)).status_code == 200

    response = get(bearer(f"{api_key.prefix}_{'A' * 43}"))

    assert response.status_code == 401


def test_a_rate_limited_request_with_a_known_key_is_one_redis_round_trip(company, owner, monkeypatch) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)
    assert get(client).status_code == 200
    sent: list[bytes] = []
    original = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    response = get(client)

    assert response.status_code == 200
    # SET NX EX + INCR + PTTL of the key's budget, and the address's failed authentications.
    assert len(sent) == 1, sent


@override_settings(API_RATE_LIMIT="3/minute")
def test_the_budget_counted_in_one_round_trip_still_refuses_with_retry_after(company, owner) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)

    answers = [get(client) for _ in range(5)]

    assert [r.status_code for r in answers] == [200] * 3 + [429] * 2
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60


def test_a_connection_that_just_served_a_request_is_not_probed_and_an_idle_one_is(company, owner, monkeypatch) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)
    probes: list[bool] = []
    wrapper = type(connections[DEFAULT_DB_ALIAS])
    original = wrapper.is_usable

    def counting(self: Any) -> bool:
        probes.append(True)
        return original(self)

    monkeypatch.setattr(wrapper, "is_usable", counting)
    get(client)
    probes.clear()

    assert [get(client).status_code for _ in range(3)] == [200] * 3
    assert probes == []  # used a moment ago, nothing on its socket: no SELECT 1

    monkeypatch.setattr(middleware, "HEALTH_CHECK_IDLE_SECONDS", 0.0)
    time.sleep(0.01)
    assert get(client).status_code == 200
    assert probes == [True]  # idle longer than the limit: probed as Django does


def test_an_api_key_request_skips_the_browsers_middleware_and_keeps_the_security_headers(company, owner) -> None:
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    client = bearer(key)
    # A browser's session cookie beside the key changes nothing: the key decides.
    client.force_login(owner)

    response = get(client)

    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session")
    assert not hasattr(request, "_messages")
    assert not hasattr(request, "htmx")
    assert response.cookies == {}
    assert "Cookie" not in response.get("Vary", "")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"]


def test_a_session_api_request_still_has_its_session_and_its_csrf_check(company, owner) -> None:
    client = APIClient(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.7")
    client.force_login(owner)

    read = client.get(URL)
    refused = client.patch(URL, {"name": "No token"}, format="json")
    client.get("/")  # a page sets the CSRF cookie, as the browser has it
    token = client.cookies["csrftoken"].value
    accepted = client.patch(URL, {"name": "With token"}, format="json", HTTP_X_CSRFTOKEN=token)

    assert read.status_code == 200
    assert hasattr(read.wsgi_request, "session")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["name"] == "With token"
