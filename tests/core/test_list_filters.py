"""Every list of the API filters one way: a django-filter FilterSet declared on the view, read by
DjangoFilterBackend, so a bad value is a 400 in the one error body naming the field, and the
OpenAPI schema lists every filter."""

from __future__ import annotations

import pytest
from django.test import Client
from drf_spectacular.generators import EndpointEnumerator

from apps.billing.models import LedgerTransaction
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.factories import grant
from tests.sip_profiles.factories import digest_profile, ip_profile

pytestmark = pytest.mark.django_db

BAD_FILTERS = [
    ("/api/v1/ledger/", {"month": "November"}, "month", "Give the month as YYYY-MM, e.g. 2026-11."),
    ("/api/v1/ledger/", {"profile": "main"}, "profile", "No such SIP profile."),
    ("/api/v1/ledger/", {"profile": "6f1c2a52-8d0e-4a8e-9a51-2f0f4b1c9d11"}, "profile", "No such SIP profile."),
    ("/api/v1/ledger/", {"kind": "gift"}, "kind", f"Choose one of {', '.join(LedgerTransaction.Kind.values)}."),
    (
        "/api/v1/credit/purchases/",
        {"method": "cash"},
        "method",
        "Select a valid choice. cash is not one of the available choices.",
    ),
    # (list, query, field, message): the messages the lists gave before they shared FilterSets
    ("/api/v1/sip-profiles/", {"status": "sleeping"}, "status", "Choose one of active, suspended."),
    ("/api/v1/sip-profiles/", {"auth_method": "sms"}, "auth_method", "Choose one of registration, ip."),
    ("/api/v1/business-accounts/", {"sip_profile": "main"}, "sip_profile", "Give a profile id or “none”."),
    ("/api/v1/numbers/available/", {"type": "premium"}, "type", '"premium" is not a valid choice.'),
    ("/api/v1/numbers/available/", {"contains": "79a6"}, "contains", "Enter digits only, e.g. 7946 or +4420."),
    (
        "/api/v1/numbers/available/",
        {"contains": "+1234567890123456"},
        "contains",
        "A phone number has at most 15 digits.",
    ),
    (
        "/api/v1/numbers/available/",
        {"country": "xx"},
        "country",
        "“xx” is not a country code; use two letters such as GB or US.",
    ),
    (
        "/api/v1/numbers/",
        {"status": "lost"},
        "status",
        "Select a valid choice. lost is not one of the available choices.",
    ),
    (
        "/api/v1/members/",
        {"role": "boss"},
        "role",
        "Select a valid choice. boss is not one of the available choices.",
    ),
]


@pytest.mark.parametrize(("url", "query", "field", "message"), BAD_FILTERS)
def test_a_bad_filter_value_is_a_400_naming_the_field(company, owner, url, query, field, message) -> None:
    response = client_as(owner).get(url, query)

    assert response.status_code == 400, response.content
    assert response.json() == {"detail": message, "code": "invalid", "errors": {field: [message]}}


def test_two_bad_filters_are_both_named(company, owner) -> None:
    response = client_as(owner).get("/api/v1/numbers/available/", {"type": "premium", "contains": "79a6"})

    assert response.status_code == 400
    assert response.json()["detail"] == "Some fields are not valid."
    assert set(response.json()["errors"]) == {"type", "contains"}


def test_an_empty_filter_filters_nothing(company, owner) -> None:
    digest_profile(company, owner, name="Head office")
    ip_profile(company, owner, name="Leeds branch")

    body = client_as(owner).get("/api/v1/sip-profiles/", {"search": "", "status": "", "auth_method": ""}).json()

    assert [p["name"] for p in body["results"]] == ["Head office", "Leeds branch"]


def test_the_profile_list_searches_and_filters(company, owner) -> None:
    digest_profile(company, owner, name="Head office")
    leeds = ip_profile(company, owner, name="Leeds branch")
    SipProfile.objects.filter(pk=leeds.pk).update(status=SipProfile.Status.SUSPENDED)
    client = client_as(owner)

    def names(query: dict[str, str]) -> list[str]:
        response = client.get("/api/v1/sip-profiles/", query)
        assert response.status_code == 200, response.content
        return [p["name"] for p in response.json()["results"]]

    assert names({"search": " LEEDS "}) == ["Leeds branch"]
    assert names({"search": leeds.name[:4].lower()}) == ["Leeds branch"]
    assert names({"auth_method": "registration"}) == ["Head office"]
    assert names({"status": "suspended"}) == ["Leeds branch"]
    assert names({"status": "active", "auth_method": "ip"}) == []


def test_the_profile_page_ignores_a_filter_value_it_does_not_offer(company, owner) -> None:
    digest_profile(company, owner, name="Head office")
    ip_profile(company, owner, name="Leeds branch")

    page = client_as(owner).get("/sip-profiles/", {"status": "sleeping", "q": "branch"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Leeds branch" in html
    assert "Head office" not in html


def _filtered_api_views() -> list[tuple[str, type]]:
    views = []
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        view = getattr(callback, "cls", None)
        if method == "GET" and getattr(view, "filterset_class", None) is not None:
            views.append((path, view))
    return views


def test_every_filtered_list_is_found() -> None:
    paths = {path for path, _view in _filtered_api_views()}

    assert {
        "/api/v1/sip-profiles/",
        "/api/v1/business-accounts/",
        "/api/v1/numbers/available/",
        "/api/v1/numbers/",
        "/api/v1/members/",
        "/api/v1/audit-events/",
        "/api/v1/ledger/",
        "/api/v1/credit/purchases/",
    } <= paths


def test_the_schema_lists_every_filter_of_every_list(db) -> None:
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    for path, view in _filtered_api_views():
        operation = schema["paths"][path]["get"]
        documented = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        declared = set(view.filterset_class.base_filters)
        assert declared <= set(documented), (path, declared - set(documented))
        # Page numbers, or a keyset cursor (calls/: its deep pages must not count or skip rows).
        assert {"page", "cursor"} & set(documented), path
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ApiError"
        }, path
    profile_filters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/sip-profiles/"]["get"]["parameters"]}
    assert set(profile_filters["status"]["enum"]) == {"active", "suspended"}
    assert set(profile_filters["auth_method"]["enum"]) == {"registration", "ip"}


def test_the_statement_names_another_companys_profile_as_unknown(company, owner, other_company) -> None:
    theirs, _ = digest_profile(other_company, owner, name="Theirs")

    response = client_as(owner).get("/api/v1/ledger/", {"profile": str(theirs.public_id)})

    assert response.status_code == 400
    assert response.json()["errors"] == {"profile": ["No such SIP profile."]}


def test_the_statement_page_says_a_bad_filter_and_shows_the_whole_statement(company, owner) -> None:
    grant(company, "100", "stripe:pi_page")

    page = client_as(owner).get("/credit/statement/", {"month": "soon", "format": "csv"})

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "Give the month as YYYY-MM, e.g. 2026-11." in html
    assert "Credit purchase" in html
