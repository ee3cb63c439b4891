from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.companies.models import Company, Membership, Role
from apps.companies.services import membership_change_role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db


def test_a_viewer_can_read_but_changes_nothing(company, owner) -> None:
    viewer = member(company, Role.VIEWER)
    other = member(company, Role.BILLING)
    client = client_as(viewer)
    events_before = AuditEvent.objects.count()

    assert client.get("/api/v1/company/").status_code == 200
    assert client.get("/api/v1/members/").status_code == 200
    writes = [
        client.patch("/api/v1/company/", {"name": "Hijacked"}),
        client.patch(f"/api/v1/members/{Membership.objects.get(user=other).public_id}/", {"role": "admin"}),
        client.delete(f"/api/v1/members/{Membership.objects.get(user=other).public_id}/"),
        client.post("/api/v1/invitations/", {"email": "x@example.com", "role": "viewer"}),
        client.post("/api/v1/api-keys/", {"name": "k", "role": "viewer"}),
        client.post("/api/v1/verification/", {}),
    ]

    assert [r.status_code for r in writes] == [403] * len(writes)
    assert all(r.json()["code"] == "permission_denied" for r in writes)
    company.refresh_from_db()
    assert company.name != "Hijacked"
    assert Membership.objects.get(user=other).role == Role.BILLING
    assert AuditEvent.objects.count() == events_before


def test_a_viewer_cannot_see_the_audit_log_or_api_keys(company, owner) -> None:
    client = client_as(member(company, Role.VIEWER))

    assert client.get("/api/v1/audit-events/").status_code == 403
    assert client.get("/api/v1/api-keys/").status_code == 403
    assert client.get("/audit/").status_code == 403


def test_billing_cannot_manage_members(company, owner) -> None:
    billing = member(company, Role.BILLING)
    viewer = member(company, Role.VIEWER)
    client = client_as(billing)

    response = client.patch(f"/api/v1/members/{Membership.objects.get(user=viewer).public_id}/", {"role": "admin"})
    assert response.status_code == 403
    assert client.post("/api/v1/invitations/", {"email": "y@example.com", "role": "viewer"}).status_code == 403
    page = client.post(
        f"/company/members/{Membership.objects.get(user=viewer).public_id}/role/", {"role": "admin"}, format="multipart"
    )
    assert page.status_code == 403
    assert Membership.objects.get(user=viewer).role == Role.VIEWER


def test_an_admin_manages_members_but_not_owners(company, owner) -> None:
    admin = member(company, Role.ADMIN)
    viewer = member(company, Role.VIEWER)
    client = client_as(admin)

    promoted = client.patch(f"/api/v1/members/{Membership.objects.get(user=viewer).public_id}/", {"role": "billing"})
    to_owner = client.patch(f"/api/v1/members/{Membership.objects.get(user=viewer).public_id}/", {"role": "owner"})
    demote_owner = client.patch(f"/api/v1/members/{Membership.objects.get(user=owner).public_id}/", {"role": "viewer"})
    remove_owner = client.delete(f"/api/v1/members/{Membership.objects.get(user=owner).public_id}/")

    assert promoted.status_code == 200
    assert promoted.json()["role"] == "billing"
    # A permission refusal is a 403, as the API's own role checks answer (issue 12, item 6).
    assert [to_owner.status_code, demote_owner.status_code, remove_owner.status_code] == [403, 403, 403]
    assert {r.json()["code"] for r in (to_owner, demote_owner, remove_owner)} == {"permission_denied"}
    assert "owner" in to_owner.json()["errors"]["role"][0]
    assert Membership.objects.get(user=owner).role == Role.OWNER


def test_the_last_owner_can_neither_be_demoted_nor_removed_nor_leave(company, owner) -> None:
    client = client_as(owner)
    mine = Membership.objects.get(user=owner)

    demote = client.patch(f"/api/v1/members/{mine.public_id}/", {"role": "admin"})
    leave = client.delete(f"/api/v1/members/{mine.public_id}/")

    assert demote.status_code == 400
    assert demote.json()["code"] == "last_owner"
    assert "at least one owner" in demote.json()["errors"]["role"][0]
    assert leave.status_code == 400
    assert Membership.objects.get(pk=mine.pk).role == Role.OWNER


def test_with_a_second_owner_the_first_may_step_down(company, owner) -> None:
    second = member(company, Role.OWNER)

    response = client_as(second).patch(
        f"/api/v1/members/{Membership.objects.get(user=owner).public_id}/", {"role": "admin"}
    )

    assert response.status_code == 200
    assert Membership.objects.get(user=owner).role == Role.ADMIN


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner() -> None:
    company = Company.objects.create(name="Race Ltd", country="GB", currency="GBP")
    first = member(company, Role.OWNER)
    second = member(company, Role.OWNER)

    def demote(actor_user, target_user) -> str:
        membership_change_role(
            actor=Actor(user=actor_user),
            membership=Membership.objects.get(user=target_user, company=company),
            role=Role.ADMIN,
        )
        return "ok"

    results = run_concurrently(lambda: demote(first, second), lambda: demote(second, first), catch=(ApplicationError,))
    outcomes = [getattr(r, "code", r) for r in results]

    assert sorted(outcomes) == ["last_owner", "ok"] or sorted(outcomes) == ["ok", "permission_denied"]
    assert Membership.objects.filter(company=company, role=Role.OWNER).count() == 1


def test_a_member_of_two_companies_switches_between_them(company, owner, other_company) -> None:
    Membership.objects.create(company=other_company, user=owner, role=Role.VIEWER)
    client = client_as(owner)

    assert client.get("/api/v1/company/").json()["name"] == company.name
    client.post("/companies/switch/", {"company": str(other_company.public_id)}, format="multipart")
    body = client.get("/api/v1/company/").json()

    assert body["name"] == other_company.name
    assert body["your_role"] == "viewer"


def test_switching_to_a_company_you_do_not_belong_to_is_404(company, owner, other_company) -> None:
    response = client_as(owner).post(
        "/companies/switch/", {"company": str(other_company.public_id)}, format="multipart"
    )

    assert response.status_code == 404
