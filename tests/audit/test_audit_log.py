from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

from apps.accounts.services import api_key_create, api_key_revoke
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.companies.models import Membership, Role
from apps.companies.services import (
    company_update,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    verification_approve,
    verification_submit,
)
from apps.core.actor import Actor
from tests.conftest import client_as
from tests.factories import PASSWORD, UserFactory, member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db


def actions(company) -> list[str]:
    return list(AuditEvent.objects.filter(company=company).order_by("id").values_list("action", flat=True))


def test_every_change_writes_an_audit_event_with_its_before_and_after(company, owner) -> None:
    actor = Actor(user=owner, ip_address="198.51.100.7", user_agent="pytest")
    viewer = member(company, Role.VIEWER)
    original_name = company.name

    company_update(actor=actor, company=company, name="Renamed Ltd")
    membership_change_role(actor=actor, membership=Membership.objects.get(user=viewer), role=Role.BILLING)
    _invitation, token = invitation_create(actor=actor, company=company, email="in@example.com", role="viewer")
    invitee = UserFactory(email="in@example.com")
    invitation_accept(actor=Actor(user=invitee), token=token, user=invitee)
    other, _ = invitation_create(actor=actor, company=company, email="out@example.com", role="viewer")
    invitation_revoke(actor=actor, invitation=other)
    api_key, _ = api_key_create(actor=actor, company=company, name="k", role="viewer")
    api_key_revoke(actor=actor, api_key=api_key)
    membership_remove(actor=actor, membership=Membership.objects.get(user=viewer))
    request = verification_submit(
        actor=actor,
        company=company,
        documents=[SimpleUploadedFile("c.pdf", b"%PDF-1.4", content_type="application/pdf")],
        legal_name="Renamed Limited",
        registration_number="42",
        address_line1="1 Road",
        city="Leeds",
        country="GB",
    )
    staff = UserFactory(is_staff=True)
    verification_approve(actor=Actor(user=staff), request=request)

    assert actions(company) == [
        "company.updated",
        "member.role_changed",
        "invitation.created",
        "invitation.accepted",
        "member.added",
        "invitation.created",
        "invitation.revoked",
        "api_key.created",
        "api_key.revoked",
        "member.removed",
        "verification.submitted",
        "verification.approved",
    ]
    renamed = AuditEvent.objects.get(company=company, action="company.updated")
    assert renamed.changes == {"name": {"before": original_name, "after": "Renamed Ltd"}}
    assert renamed.ip_address == "198.51.100.7"
    assert renamed.user_agent == "pytest"
    assert renamed.actor_user == owner
    role = AuditEvent.objects.get(company=company, action="member.role_changed")
    assert role.changes == {"role": {"before": "viewer", "after": "billing"}}


def test_a_change_that_fails_leaves_no_audit_event(company, owner) -> None:
    before = AuditEvent.objects.count()

    with pytest.raises(Exception):  # noqa: B017 - the last-owner rule
        membership_change_role(actor=Actor(user=owner), membership=Membership.objects.get(user=owner), role="viewer")

    assert AuditEvent.objects.count() == before


def test_an_unchanged_save_writes_no_event(company, owner) -> None:
    before = AuditEvent.objects.count()

    company_update(actor=Actor(user=owner), company=company, name=company.name)

    assert AuditEvent.objects.count() == before


def test_audit_events_cannot_be_changed_or_deleted_in_the_database(company, owner) -> None:
    event = audit_record(actor=Actor(user=owner), action="test.event", company=company)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_sign_ins_and_failed_sign_ins_are_recorded_for_the_members_companies(company, owner) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")

    client.post("/accounts/login/", {"login": owner.email, "password": "wrong password here"})
    client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})

    failed = AuditEvent.objects.get(company=company, action="auth.sign_in_failed")
    assert owner.email in failed.actor_label
    assert failed.ip_address == "203.0.113.9"
    signed_in = AuditEvent.objects.get(company=company, action="auth.signed_in")
    assert signed_in.actor_user == owner


def test_a_failed_sign_in_for_an_unknown_address_belongs_to_no_company(db) -> None:
    Client().post("/accounts/login/", {"login": "nobody@example.com", "password": "whatever-password"})

    event = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert event.company is None
    assert "nobody@example.com" in event.actor_label


def test_too_many_failed_sign_ins_are_rate_limited(company, owner) -> None:
    client = Client()
    pages = [
        client.post("/accounts/login/", {"login": owner.email, "password": f"wrong-{n}"}).content.decode()
        for n in range(6)
    ]

    assert "Too many failed login attempts" not in pages[0]
    assert "Too many failed login attempts" in pages[-1]
    # Even the right password is refused while the limit holds.
    right = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert right.status_code == 200
    assert "Too many failed login attempts" in right.content.decode()


def test_the_audit_api_filters_by_action_actor_and_time(company, owner) -> None:
    actor = Actor(user=owner)
    company_update(actor=actor, company=company, name="One")
    invitation_create(actor=actor, company=company, email="f@example.com", role="viewer")
    client = client_as(owner)

    by_action = client.get("/api/v1/audit-events/", {"action": "company.updated"}).json()
    by_prefix = client.get("/api/v1/audit-events/", {"action_prefix": "invitation."}).json()
    by_actor = client.get("/api/v1/audit-events/", {"actor": owner.email}).json()
    future = client.get("/api/v1/audit-events/", {"since": (timezone.now() + timedelta(hours=1)).isoformat()}).json()
    bad = client.get("/api/v1/audit-events/", {"since": "yesterday-ish"})

    assert [e["action"] for e in by_action["results"]] == ["company.updated"]
    assert by_action["results"][0]["changes"]["name"]["after"] == "One"
    assert {e["action"] for e in by_prefix["results"]} == {"invitation.created"}
    assert len(by_actor["results"]) >= 2
    assert future["results"] == []
    assert bad.status_code == 400
    assert "since" in bad.json()["errors"]


def test_the_audit_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    client = client_as(owner)
    for n in range(30):
        audit_record(actor=Actor(user=owner), action=f"test.{n}", company=company)
    client.get("/api/v1/audit-events/")  # warm the session

    with expect_queries(*SIGNED_IN, "the page of events (keyset: no count)"):
        response = client.get("/api/v1/audit-events/")

    assert response.status_code == 200


def test_the_audit_page_lists_and_filters_events(company, owner) -> None:
    company_update(actor=Actor(user=owner), company=company, name="Page Test Ltd")
    client = client_as(owner)

    html = client.get("/audit/").content.decode()
    filtered = client.get("/audit/", {"action_prefix": "auth."}).content.decode()
    partial = client.get("/audit/", {"action_prefix": "company."}, HTTP_HX_REQUEST="true").content.decode()

    assert "company.updated" in html
    assert "Page Test Ltd" in html
    assert "company.updated" not in filtered
    assert "<html" not in partial
    assert "company.updated" in partial


def test_a_password_change_is_recorded(company, owner) -> None:
    client = Client()
    client.force_login(owner)

    client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "brand-new-secret-2027", "password2": "brand-new-secret-2027"},
    )

    assert AuditEvent.objects.filter(company=company, action="auth.password_changed", actor_user=owner).exists()
