from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.companies.models import Invitation, Membership, Role
from apps.companies.services import invitation_accept, invitation_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.conftest import client_as
from tests.factories import PASSWORD, UserFactory, member
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db


def _token_from_mail() -> str:
    match = re.search(r"/invitations/([\w-]+)/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_an_invitation_is_emailed_and_accepting_it_makes_a_member(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(owner).post("/api/v1/invitations/", {"email": "New.Person@Example.com", "role": "billing"})

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    assert mail.outbox[-1].to == ["new.person@example.com"]
    token = _token_from_mail()
    invitee = UserFactory(email="new.person@example.com")

    client = Client()
    client.force_login(invitee)
    page = client.get(f"/invitations/{token}/")
    assert company.name in page.content.decode()
    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 302
    assert Membership.objects.get(company=company, user=invitee).role == Role.BILLING
    assert Invitation.objects.get(email="new.person@example.com").status == "accepted"


def test_an_expired_invitation_cannot_be_accepted(company, owner) -> None:
    _, token = invitation_create(actor=Actor(user=owner), company=company, email="late@example.com", role="viewer")
    invitee = UserFactory(email="late@example.com")

    with time_machine.travel(timezone.now() + timedelta(days=8)), pytest.raises(ApplicationError) as error:
        invitation_accept(actor=Actor(user=invitee), token=token, user=invitee)

    assert error.value.code == "expired"
    assert not Membership.objects.filter(user=invitee).exists()


def test_an_invitation_cannot_be_accepted_by_someone_else(company, owner) -> None:
    _, token = invitation_create(actor=Actor(user=owner), company=company, email="meant@example.com", role="admin")
    intruder = UserFactory(email="intruder@example.com")
    client = Client()
    client.force_login(intruder)

    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 400
    assert "This invitation is for meant@example.com" in response.content.decode()
    assert not Membership.objects.filter(user=intruder).exists()
    assert Invitation.objects.get(email="meant@example.com").status == "pending"


def test_a_revoked_invitation_and_a_replaced_one_no_longer_work(company, owner) -> None:
    actor = Actor(user=owner)
    first, first_token = invitation_create(actor=actor, company=company, email="twice@example.com", role="viewer")
    second, second_token = invitation_create(actor=actor, company=company, email="twice@example.com", role="admin")
    invitee = UserFactory(email="twice@example.com")

    first.refresh_from_db()
    assert first.status == "revoked"
    with pytest.raises(ApplicationError):
        invitation_accept(actor=Actor(user=invitee), token=first_token, user=invitee)

    client = client_as(owner)
    response = client.delete(f"/api/v1/invitations/{second.public_id}/")
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"/api/v1/invitations/{second.public_id}/").json()["status"] == "revoked"
    with pytest.raises(ApplicationError):
        invitation_accept(actor=Actor(user=invitee), token=second_token, user=invitee)


def test_an_invitation_link_can_only_be_used_once(company, owner) -> None:
    _, token = invitation_create(actor=Actor(user=owner), company=company, email="once@example.com", role="viewer")
    invitee = UserFactory(email="once@example.com")
    invitation_accept(actor=Actor(user=invitee), token=token, user=invitee)

    with pytest.raises(ApplicationError) as error:
        invitation_accept(actor=Actor(user=invitee), token=token, user=invitee)
    assert error.value.code == "not_pending"


def test_inviting_an_existing_member_is_a_field_error(company, owner) -> None:
    existing = member(company, Role.VIEWER)

    response = client_as(owner).post("/api/v1/invitations/", {"email": existing.email.upper(), "role": "admin"})

    assert response.status_code == 400
    assert "already a member" in response.json()["errors"]["email"][0]


def test_an_unknown_invitation_link_is_404() -> None:
    assert Client().get("/invitations/not-a-real-token/").status_code == 404


def test_someone_new_signs_up_through_an_invitation_and_joins_without_a_company_of_their_own(company, owner) -> None:
    _, token = invitation_create(actor=Actor(user=owner), company=company, email="fresh@example.com", role="viewer")

    client = Client()
    page = client.get(f"/accounts/signup/?invitation={token}")
    assert page.status_code == 200
    form = page.context["form"]
    assert form.initial["email"] == "fresh@example.com"
    assert form.fields["company_name"].widget.is_hidden
    response = client.post(
        "/accounts/signup/",
        {"email": "fresh@example.com", "password1": PASSWORD, "password2": PASSWORD, "invitation": token},
    )

    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    membership = Membership.objects.get(user__email="fresh@example.com")
    assert membership.company == company
    assert membership.role == Role.VIEWER
    assert Membership.objects.filter(user__email="fresh@example.com").count() == 1


def test_an_admin_cannot_invite_an_owner(company) -> None:
    admin = member(company, Role.ADMIN)

    response = client_as(admin).post("/api/v1/invitations/", {"email": "boss@example.com", "role": "owner"})

    assert response.status_code == 403  # a permission refusal (issue 12, item 6)
    assert response.json()["code"] == "permission_denied"
    assert "Only an owner" in response.json()["errors"]["role"][0]
    assert not Invitation.objects.exists()


def test_the_invitation_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    invitation_create(actor=Actor(user=owner), company=company, email="first@example.com", role=Role.VIEWER)
    client = client_as(owner)
    client.get("/api/v1/invitations/")  # warm the session
    reasons = (*SIGNED_IN, "the count", "the page of invitations")

    with expect_queries(*reasons):
        one = client.get("/api/v1/invitations/").json()
    for n in range(6):
        invitation_create(actor=Actor(user=owner), company=company, email=f"more{n}@example.com", role=Role.BILLING)
    with expect_queries(*reasons):
        many = client.get("/api/v1/invitations/").json()

    assert (one["count"], many["count"]) == (1, 7)
