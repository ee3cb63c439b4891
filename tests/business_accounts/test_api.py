"""The business-accounts API: /api/v1/business-accounts/."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Membership, Role
from apps.core.actor import Actor
from tests.business_accounts.factories import business_account, sip_profile
from tests.business_accounts.test_accounts import active_number
from tests.conftest import client_as
from tests.factories import api_key_for, member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db

URL = "/api/v1/business-accounts/"


def detail(account: BusinessAccount) -> str:
    return f"{URL}{account.public_id}/"


def assert_error(response, status: int, field: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert field in body["errors"], body
    assert body["errors"][field]
    assert all(isinstance(m, str) for m in body["errors"][field])
    return body


def test_creating_an_account_returns_it_with_its_call_button(company, owner, settings) -> None:
    settings.SIP_DOMAIN = "sip.example.net"
    viewer = Membership.objects.get(user=member(company, Role.VIEWER))

    response = client_as(owner).post(
        URL, {"name": "sales.desk", "display_name": "Sales", "member": str(viewer.public_id)}
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "sales.desk"
    assert body["member"] == str(viewer.public_id)
    assert body["member_email"] == viewer.user.email
    assert body["sip_profile"] is None
    assert body["signin_enabled"] is True
    assert body["sip_address"] == "sip:sales.desk@sip.example.net"
    assert body["call_button_html"].startswith('<a href="sip:sales.desk@sip.example.net" style="')
    assert body["call_button_html"].endswith(">Call Sales</a>")


def test_the_call_button_escapes_the_display_name(company, owner) -> None:
    account = business_account(company, owner, display_name='<script>alert("x")</script> & Co')

    html = client_as(owner).get(detail(account)).json()["call_button_html"]

    assert "<script>" not in html
    assert "Call &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co</a>" in html


def test_an_account_can_be_created_already_routed(company, owner) -> None:
    profile = sip_profile(company)

    response = client_as(owner).post(
        URL, {"name": "sales.desk", "display_name": "Sales", "sip_profile": str(profile.public_id)}
    )

    assert response.status_code == 201
    assert response.json()["sip_profile"] == str(profile.public_id)
    assert response.json()["sip_profile_name"] == "Main PBX"
    assert response.json()["signin_enabled"] is False


def test_an_account_whose_routing_is_refused_is_not_created_either(company, owner) -> None:
    admin = Membership.objects.get(user=member(company, Role.ADMIN))
    profile = sip_profile(company)

    response = client_as(owner).post(
        URL,
        {
            "name": "boss.line",
            "display_name": "Boss",
            "member": str(admin.public_id),
            "sip_profile": str(profile.public_id),
        },
    )

    body = assert_error(response, 400, "sip_profile")
    assert body["code"] == "admin_account"
    assert not BusinessAccount.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Sales", "display_name": "Sales"}, "name"),
        ({"name": "sales.desk"}, "display_name"),
        ({"display_name": "Sales"}, "name"),
        ({"name": "sales.desk", "display_name": "Sales", "member": "not-a-uuid"}, "member"),
        ({"name": "sales.desk", "display_name": "Sales", "member": "6f1c1a52-7d0f-4d3c-9d55-3d3f7b0f0a11"}, "member"),
        (
            {"name": "sales.desk", "display_name": "Sales", "sip_profile": "6f1c1a52-7d0f-4d3c-9d55-3d3f7b0f0a11"},
            "sip_profile",
        ),
    ],
)
def test_bad_input_is_a_field_error(company, owner, payload, field) -> None:
    assert_error(client_as(owner).post(URL, payload), 400, field)
    assert not BusinessAccount.objects.exists()


def test_a_name_taken_by_another_company_is_a_field_error(company, owner, other_company) -> None:
    business_account(other_company, member(other_company), name="sales.desk")

    body = assert_error(client_as(owner).post(URL, {"name": "sales.desk", "display_name": "Sales"}), 400, "name")

    assert body["code"] == "name_taken"


def test_the_list_filters_by_search_and_by_profile(company, owner) -> None:
    main, spare = sip_profile(company, "Main"), sip_profile(company, "Spare")
    actor = Actor(user=owner)
    from apps.business_accounts.services import business_account_assign

    business_account_assign(actor=actor, account=business_account(company, owner, name="sales.desk"), profile=main)
    business_account_assign(
        actor=actor, account=business_account(company, owner, name="support.desk", display_name="Help"), profile=spare
    )
    business_account(company, owner, name="billing.desk", display_name="Accounts")
    client = client_as(owner)

    def names(**params) -> list[str]:
        response = client.get(URL, params)
        assert response.status_code == 200, response.json()
        return [a["name"] for a in response.json()["results"]]

    assert names() == ["billing.desk", "sales.desk", "support.desk"]
    assert names(search="SALES") == ["sales.desk"]
    assert names(search="help") == ["support.desk"]
    assert names(sip_profile=str(main.public_id)) == ["sales.desk"]
    assert names(sip_profile="none") == ["billing.desk"]
    assert names(sip_profile="none", search="sales") == []
    assert_error(client.get(URL, {"sip_profile": "main"}), 400, "sip_profile")


def test_the_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    profile = sip_profile(company)
    viewer = Membership.objects.get(user=member(company, Role.VIEWER))
    from apps.business_accounts.services import business_account_assign

    for n in range(15):
        account = business_account(company, owner, name=f"desk{n:03d}", member=viewer)
        business_account_assign(actor=Actor(user=owner), account=account, profile=profile)
    client = client_as(owner)
    client.get(URL)  # warm the session

    with expect_queries(
        *SIGNED_IN, "the count", "the page of accounts, joined with their profiles, members and members' users"
    ):
        response = client.get(URL)

    assert response.json()["count"] == 15
    assert all(a["member_email"] == viewer.user.email for a in response.json()["results"])


def test_patch_edits_links_routes_and_unassigns(company, owner) -> None:
    account = business_account(company, owner)
    profile = sip_profile(company)
    billing = Membership.objects.get(user=member(company, Role.BILLING))
    client = client_as(owner)

    edited = client.patch(detail(account), {"display_name": "Sales team", "member": str(billing.public_id)})
    routed = client.patch(detail(account), {"sip_profile": str(profile.public_id)})
    unlinked = client.patch(detail(account), {"member": None})
    unrouted = client.patch(detail(account), {"sip_profile": None})

    assert edited.status_code == 200
    assert edited.json()["display_name"] == "Sales team"
    assert edited.json()["member"] == str(billing.public_id)
    assert routed.json()["sip_profile"] == str(profile.public_id)
    assert routed.json()["signin_enabled"] is False
    assert unlinked.json()["member"] is None
    assert unrouted.json()["sip_profile"] is None
    assert unrouted.json()["signin_enabled"] is True


def test_patching_the_name_is_refused(company, owner) -> None:
    account = business_account(company, owner)

    body = assert_error(client_as(owner).patch(detail(account), {"name": "new.name"}), 400, "name")

    assert "cannot be changed" in body["detail"]
    assert client_as(owner).patch(detail(account), {"name": "sales.desk"}).status_code == 200


def test_signin_enabled_is_read_only(company, owner) -> None:
    account = business_account(company, owner)

    response = client_as(owner).patch(detail(account), {"signin_enabled": False})

    assert response.status_code == 200
    assert response.json()["signin_enabled"] is True


def test_moving_a_routed_account_is_a_clear_400(company, owner) -> None:
    account = business_account(company, owner)
    first, second = sip_profile(company, "First"), sip_profile(company, "Second")
    client = client_as(owner)
    client.patch(detail(account), {"sip_profile": str(first.public_id)})

    body = assert_error(client.patch(detail(account), {"sip_profile": str(second.public_id)}), 400, "sip_profile")

    assert body["detail"] == "“sales.desk” is already routed to profile “First”; unassign it first."
    assert client.patch(detail(account), {"sip_profile": str(first.public_id)}).status_code == 200


def test_linking_an_admin_and_routing_in_one_patch_changes_nothing(company, owner) -> None:
    account = business_account(company, owner)
    admin = Membership.objects.get(user=member(company, Role.ADMIN))
    profile = sip_profile(company)

    response = client_as(owner).patch(
        detail(account), {"member": str(admin.public_id), "sip_profile": str(profile.public_id)}
    )

    assert_error(response, 400, "sip_profile")
    account.refresh_from_db()
    assert account.member is None
    assert account.sip_profile is None


def test_delete_removes_the_account_unless_numbers_ring_it(company, owner) -> None:
    kept = business_account(company, owner, name="kept.desk")
    active_number(company, kept)
    gone = business_account(company, owner, name="gone.desk")
    client = client_as(owner)

    assert client.delete(detail(gone)).status_code == 204
    refused = client.delete(detail(kept))

    assert refused.status_code == 400
    assert refused.json()["code"] == "has_numbers"
    assert "Unassign those numbers" in refused.json()["detail"]
    assert list(BusinessAccount.objects.values_list("name", flat=True)) == ["kept.desk"]
    assert AuditEvent.objects.filter(action="business_account.deleted").count() == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
def test_members_without_service_rights_read_but_do_not_write(company, owner, role) -> None:
    account = business_account(company, owner)
    client = client_as(member(company, role))

    assert client.get(URL).status_code == 200
    assert client.get(detail(account)).status_code == 200
    writes = [
        client.post(URL, {"name": "new.desk", "display_name": "New"}),
        client.patch(detail(account), {"display_name": "Hijacked"}),
        client.delete(detail(account)),
    ]
    assert [r.status_code for r in writes] == [403, 403, 403]
    assert BusinessAccount.objects.get().display_name == "Sales"


def test_an_api_key_with_the_admin_role_manages_accounts(company) -> None:
    _, key = api_key_for(company, Role.ADMIN)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.post(URL, {"name": "api.desk", "display_name": "From the API"})

    assert response.status_code == 201
    assert AuditEvent.objects.get(action="business_account.created").actor_api_key is not None


def test_another_companys_account_is_404(company, owner, other_company) -> None:
    theirs = business_account(other_company, member(other_company))
    client = client_as(owner)

    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(detail(theirs))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert client.get(URL).json()["count"] == 0


def test_another_companys_profile_or_member_is_a_field_error(company, owner, other_company) -> None:
    account = business_account(company, owner)
    their_profile = sip_profile(other_company)
    their_member = Membership.objects.get(user=member(other_company))
    client = client_as(owner)

    assert_error(client.patch(detail(account), {"sip_profile": str(their_profile.public_id)}), 400, "sip_profile")
    assert_error(client.patch(detail(account), {"member": str(their_member.public_id)}), 400, "member")


def test_the_schema_describes_the_endpoints(db) -> None:
    from django.test import Client

    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    assert "/api/v1/business-accounts/" in schema["paths"]
    assert "/api/v1/business-accounts/{id}/" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/v1/business-accounts/"]["get"]["parameters"]}
    assert {"search", "sip_profile", "page"} <= params
    output = schema["components"]["schemas"]["BusinessAccountOutput"]["properties"]
    assert {"call_button_html", "signin_enabled", "sip_profile", "member"} <= set(output)
