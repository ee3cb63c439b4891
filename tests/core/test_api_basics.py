from __future__ import annotations

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from apps.companies.models import Membership, Role
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db


def test_the_api_denies_anonymous_requests_with_the_common_error_body(db) -> None:
    response = APIClient().get("/api/v1/company/")

    assert response.status_code in (401, 403)
    assert set(response.json()) == {"detail", "code", "errors"}


def test_validation_errors_name_each_field(company, owner) -> None:
    response = client_as(owner).post("/api/v1/invitations/", {"email": "not an address", "role": "emperor"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"email", "role"}
    assert all(isinstance(m, str) for messages in body["errors"].values() for m in messages)


def test_a_domain_rule_is_a_field_error_too(company, owner) -> None:
    response = client_as(owner).patch("/api/v1/company/", {"currency": "EUR"})

    assert response.status_code == 400
    assert "fixed when the company is created" in response.json()["errors"]["currency"][0]
    company.refresh_from_db()
    assert company.currency == "GBP"


def test_an_unknown_api_path_is_a_json_404(company, owner) -> None:
    response = client_as(owner).get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found", "errors": {}}


def test_an_unsupported_method_is_405_in_the_same_shape(company, owner) -> None:
    response = client_as(owner).put("/api/v1/company/", {})

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_malformed_json_is_a_400_in_the_same_shape(company, owner) -> None:
    response = client_as(owner).generic("PATCH", "/api/v1/company/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_the_schema_is_valid_openapi_and_lists_every_endpoint(db) -> None:
    response = Client().get("/api/v1/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for expected in (
        "/api/v1/company/",
        "/api/v1/members/",
        "/api/v1/members/{id}/",
        "/api/v1/invitations/",
        "/api/v1/invitations/{id}/",
        "/api/v1/api-keys/",
        "/api/v1/api-keys/{id}/",
        "/api/v1/verification/",
        "/api/v1/audit-events/",
        "/api/v1/audit-events/{id}/",
    ):
        assert expected in paths
    assert "ApiKey" in schema["components"]["securitySchemes"]
    error_free = schema["paths"]["/api/v1/members/"]["get"]["parameters"]
    assert any(p["name"] == "role" for p in error_free)


def test_the_interactive_docs_are_served_by_the_app_without_a_cdn(db) -> None:
    html = Client().get("/api/v1/docs/").content.decode()

    assert "swagger-ui" in html
    assert "cdn." not in html
    assert "unpkg.com" not in html


def test_the_members_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    for _ in range(20):
        member(company, Role.VIEWER)
    client = client_as(owner)
    client.get("/api/v1/members/")

    with expect_queries(*SIGNED_IN, "the count", "the page, joined with users"):
        response = client.get("/api/v1/members/", {"role": "viewer"})

    assert response.json()["count"] == 20
    assert Membership.objects.count() == 21


def test_pagination_is_bounded(company, owner) -> None:
    for _ in range(5):
        member(company, Role.VIEWER)

    body = client_as(owner).get("/api/v1/members/", {"page_size": 2}).json()

    assert body["count"] == 6
    assert len(body["results"]) == 2
    assert body["next"]


def test_health_check_reports_the_database(db) -> None:
    body = Client().get("/healthz").json()

    assert body["checks"]["database"]["ok"] is True


def test_the_schema_and_docs_are_public_by_default(db) -> None:
    assert Client().get("/api/v1/schema/").status_code == 200
    assert Client().get("/api/v1/docs/").status_code == 200


def test_with_api_docs_public_off_the_schema_and_docs_need_a_sign_in(db, settings, owner) -> None:
    settings.API_DOCS_PUBLIC = False

    anonymous = [Client().get("/api/v1/schema/"), Client().get("/api/v1/docs/")]
    client = Client()
    client.force_login(owner)
    signed_in = [client.get("/api/v1/schema/"), client.get("/api/v1/docs/")]

    assert [r.status_code for r in anonymous] == [401, 401]
    assert all(r.json()["code"] == "not_authenticated" for r in anonymous)
    assert [r.status_code for r in signed_in] == [200, 200]


def test_a_key_with_more_rights_than_its_creator_is_a_permission_refusal_403(company) -> None:
    from apps.accounts.services import api_key_create
    from apps.core.actor import Actor
    from apps.core.exceptions import PermissionRefused

    with pytest.raises(PermissionRefused) as refused:
        api_key_create(actor=Actor(user=member(company, Role.BILLING)), company=company, name="k", role="admin")

    assert (refused.value.status_code, refused.value.code, set(refused.value.errors)) == (
        403,
        "permission_denied",
        {"role"},
    )
