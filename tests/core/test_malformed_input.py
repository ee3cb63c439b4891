"""Malformed input gets a 4xx in the one error body, names the field, and changes nothing:
never a 500 (issue 12, item 1). Money amounts are in tests/billing/test_amount_input.py."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company, Role
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.factories import member
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}, body
    return body


# --- OPTIONS ---------------------------------------------------------------------------------


def _api_routes() -> list[str]:
    """Every route of the API's URLconf, with a made-up UUID for each path parameter."""
    routes: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            else:
                routes.append(route)

    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and str(entry.pattern) == "api/v1/":
            walk(entry.url_patterns, "/api/v1/")
    return [r.replace("<uuid:id>", str(uuid.uuid4())).replace("<uuid:pk>", str(uuid.uuid4())) for r in routes]


def test_options_answers_every_api_route_without_a_server_error(company, owner) -> None:
    routes = _api_routes()
    assert len(routes) > 30  # the walk found the API
    client = client_as(owner)

    answers = {route: client.options(route) for route in routes}

    assert {route: r.status_code for route, r in answers.items() if r.status_code not in (200, 405)} == {}
    for response in answers.values():
        assert response["Content-Type"] == "application/json"


def test_options_describes_the_fields_a_write_takes(company, owner) -> None:
    body = client_as(owner).options("/api/v1/sip-profiles/").json()

    assert body["name"]
    assert "application/json" in body["parses"]
    assert {"name", "auth_method", "channels"} <= set(body["actions"]["POST"])


def test_options_leaves_out_the_writes_a_role_may_not_make(company) -> None:
    body = client_as(member(company, Role.VIEWER)).options("/api/v1/sip-profiles/").json()

    assert "actions" not in body or "POST" not in body["actions"]


# --- dates and months ------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize("offset", ["+16:00", "-15:30", "+14:01"])
def test_an_audit_filter_with_an_offset_no_place_uses_is_a_400_naming_it(owner_api, param, offset) -> None:
    body = error(owner_api.get("/api/v1/audit-events/", {param: f"2026-01-01T00:00:00{offset}"}), 400)

    assert set(body["errors"]) == {param}
    assert "UTC offset" in body["errors"][param][0]


def test_an_audit_filter_with_the_widest_real_offset_is_read_as_utc(owner_api) -> None:
    response = owner_api.get("/api/v1/audit-events/", {"since": "2026-01-01T00:00:00+14:00"})

    assert response.status_code == 200


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "2026-13", "99999-01"])
def test_a_ledger_month_out_of_range_is_a_400_naming_it(owner_api, month) -> None:
    body = error(owner_api.get("/api/v1/ledger/", {"month": month}), 400)

    assert set(body["errors"]) == {"month"}


# --- NUL and control characters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/sip-profiles/", "search"),
        ("/api/v1/business-accounts/", "search"),
        ("/api/v1/audit-events/", "action_prefix"),
        ("/api/v1/audit-events/", "object_id"),
        ("/api/v1/numbers/available/", "contains"),
        ("/api/v1/rates/lookup/", "number"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(owner_api, path, param) -> None:
    body = error(owner_api.get(f"{path}?{param}=a%00b"), 400)

    assert set(body["errors"]) == {param}
    assert "NUL" in body["detail"]


def test_a_nul_in_any_body_field_is_a_400_naming_it_and_nothing_is_created(owner_api) -> None:
    created = owner_api.post(
        "/api/v1/sip-profiles/",
        {
            "name": "Office",
            "auth_method": "ip",
            "channels": 1,
            "allowed_ips": [{"address": "192.0.2.1\x00", "port": 5060, "transport": "udp"}],
        },
        format="json",
    )

    body = error(created, 400)
    assert set(body["errors"]) == {"allowed_ips.0.address"}
    assert not SipProfile.objects.exists()


@pytest.mark.parametrize("quote", [False, True])
@pytest.mark.parametrize(("field", "value"), [("description", 0), ("name", 12.5), ("caller_id", ["+14155550100"])])
def test_a_number_or_list_where_the_schema_says_string_is_a_400_naming_it(owner_api, field, value, quote) -> None:
    # DRF's CharField read 0 as "0": schemathesis found `"description": 0` accepted by the quote.
    body = {"name": "Office", "description": "", "auth_method": "ip", "channels": 1, field: value}
    response = owner_api.post("/api/v1/sip-profiles/" + ("?quote=yes" if quote else ""), body, format="json")

    assert set(error(response, 400)["errors"]) == {field}
    assert not SipProfile.objects.exists()


def test_no_api_serializer_uses_drfs_lenient_char_field() -> None:
    offenders = [
        str(path)
        for path in Path(settings.BASE_DIR, "apps").rglob("*.py")
        if "serializers.CharField(" in path.read_text() and path.name != "money.py"
    ]
    assert offenders == [], "use apps.core.fields.TextField (a string or a 400)"


def test_a_nul_in_a_form_encoded_body_is_a_400_too(owner_api, company) -> None:
    response = owner_api.patch("/api/v1/company/", "name=Acme%00Ltd", content_type="application/x-www-form-urlencoded")

    assert set(error(response, 400)["errors"]) == {"name"}
    company.refresh_from_db()
    assert company.name != "AcmeLtd"


CONTROL_NAMES = [
    "Acme\x00",
    "Acme\x1b[31m red",
    "Acme \u202egpj.exe",
    "Acme \u2066isolated\u2069",
    "Tab\there",
    "Ac\x85me",
]


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_every_name_refuses_control_characters(company, owner, name) -> None:
    api = client_as(owner)
    profile, _ = digest_profile(company, owner)

    answers = {
        "company": api.patch("/api/v1/company/", {"name": name}, format="json"),
        "profile": api.post(
            "/api/v1/sip-profiles/", {"name": name, "auth_method": "registration", "channels": 1}, format="json"
        ),
        "profile rename": api.patch(f"/api/v1/sip-profiles/{profile.public_id}/", {"name": name}, format="json"),
        "api key": api.post("/api/v1/api-keys/", {"name": name, "role": "viewer"}, format="json"),
        "business account": api.post(
            "/api/v1/business-accounts/", {"name": "acme.sales", "display_name": name}, format="json"
        ),
    }

    fields = {what: set(error(r, 400)["errors"]) for what, r in answers.items()}
    assert fields == {
        "company": {"name"},
        "profile": {"name"},
        "profile rename": {"name"},
        "api key": {"name"},
        "business account": {"display_name"},
    }
    assert Company.objects.get(pk=company.pk).name == company.name
    assert SipProfile.objects.get(pk=profile.pk).name == profile.name
    assert SipProfile.objects.count() == 1
    assert not ApiKey.objects.exists()
    assert not BusinessAccount.objects.exists()


def test_names_in_other_scripts_and_emoji_are_kept(owner_api, company) -> None:
    response = owner_api.patch("/api/v1/company/", {"name": "شركة Ünïcode 株式会社 👩‍💻"}, format="json")

    assert response.status_code == 200, response.json()
    company.refresh_from_db()
    assert company.name == "شركة Ünïcode 株式会社 👩‍💻"


# --- Authorization ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [" ", "   ", "\t", "\xa0", " \xa0 "])
def test_an_authorization_header_of_only_white_space_is_a_401(company, header) -> None:
    response = APIClient().get("/api/v1/company/", HTTP_AUTHORIZATION=header)

    assert error(response, 401)["code"] in ("authentication_failed", "not_authenticated")


# --- body shape and size --------------------------------------------------------------------------


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400_and_changes_nothing(owner_api, company, opening) -> None:
    closing = "]" if opening == "[" else "}"
    body = opening * 50_000 + "1" + closing * 50_000

    response = owner_api.generic("PATCH", "/api/v1/company/", body, content_type="application/json")

    assert error(response, 400)["code"] == "parse_error"
    assert "nested" in response.json()["detail"]
    company.refresh_from_db()
    assert company.name == Company.objects.get(pk=company.pk).name


def test_json_nested_a_few_levels_is_still_read(owner_api) -> None:
    response = owner_api.generic(
        "PATCH",
        "/api/v1/company/",
        json.dumps({"name": "Nested Ltd", "x": [[[[{"y": [1]}]]]]}),
        content_type="application/json",
    )

    assert response.status_code in (200, 400)
    assert response.json().get("code") != "parse_error"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("PATCH", "/api/v1/company/", {}),
        ("POST", "/api/v1/credit/purchases/", {"HTTP_IDEMPOTENCY_KEY": "big-body-0001"}),
        ("POST", "/api/v1/sip-profiles/", {}),
    ],
)
def test_a_body_over_the_limit_is_a_json_413_naming_the_limit_and_logs_no_traceback(
    owner_api, company, caplog, method, path, headers
) -> None:
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    with caplog.at_level(logging.INFO):
        response = owner_api.generic(method, path, body, content_type="application/json", **headers)

    payload = error(response, 413)
    assert payload["code"] == "request_too_large"
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}" in payload["detail"]
    # Django logs every 4xx as a one-line warning; no traceback, no "suspicious operation".
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "security" in r.name]
    assert not SipProfile.objects.exists()


def test_a_form_field_over_the_limit_is_a_json_413_too(owner_api) -> None:
    boundary = "BOUNDARY"
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{big}\r\n--{boundary}--\r\n'

    response = owner_api.generic(
        "PATCH", "/api/v1/company/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert error(response, 413)["code"] == "request_too_large"
