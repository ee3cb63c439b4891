"""A form sent twice acts once (issue 13, item 3) on the company pages: inviting (and inviting
again), revoking an invitation, changing a member's role, removing a member, the company's
settings, the verification request and creating a company all carry the one-time token
(`{% form_once %}`) and their views claim it (apps.core.once.OncePostMixin), in apps below
billing. A reload, a back button or a double click sends the same token again: it is redirected
where the first went, with a message, and nothing is done again, even when the fields differ."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.billing.tasks import purge_idempotent_requests
from apps.companies.models import Company, Invitation, Membership, Role, VerificationRequest
from apps.companies.services import invitation_create
from apps.core.actor import Actor
from apps.core.models import OnceToken
from apps.core.once import KEEP_FOR
from tests.factories import member
from tests.helpers.once import page_token, sent_twice

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def web(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_an_invitation_sent_twice_is_sent_once_and_so_is_a_resend(web: Client, company: Company) -> None:
    token = page_token(web, "/company/members/")
    form = {"email": "new@example.com", "role": Role.VIEWER, "once": token}
    sent_twice(web, "/company/members/", form, {**form, "email": "other@example.com"})
    assert list(Invitation.objects.filter(company=company).values_list("email", flat=True)) == ["new@example.com"]

    # Inviting the same address again (a resend) replaces the pending invitation, once.
    resend = {"email": "new@example.com", "role": Role.ADMIN, "once": page_token(web, "/company/members/")}
    sent_twice(web, "/company/members/", resend, resend)
    invitations = Invitation.objects.filter(company=company, email="new@example.com")
    assert invitations.count() == 2
    assert [i.role for i in invitations if i.status == "pending"] == [Role.ADMIN]


def test_an_invitation_revoked_twice_is_revoked_once(web: Client, company: Company, owner: Any) -> None:
    invitation, _ = invitation_create(
        actor=Actor(user=owner), company=company, email="new@example.com", role=Role.VIEWER
    )
    url = f"/company/invitations/{invitation.public_id}/revoke/"
    token = page_token(web, "/company/members/", url)

    sent_twice(web, url, {"once": token}, {"once": token})  # the second is no "already revoked" error

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.filter(action="invitation.revoked").count() == 1


def test_a_role_changed_twice_with_other_roles_changes_once(web: Client, company: Company) -> None:
    viewer = member(company, Role.VIEWER)
    membership = Membership.objects.get(company=company, user=viewer)
    url = f"/company/members/{membership.public_id}/role/"
    token = page_token(web, "/company/members/", url)

    sent_twice(web, url, {"role": Role.ADMIN, "once": token}, {"role": Role.BILLING, "once": token})

    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_a_member_removed_twice_is_removed_once_and_the_second_is_no_404(web: Client, company: Company) -> None:
    viewer = member(company, Role.VIEWER)
    membership = Membership.objects.get(company=company, user=viewer)
    url = f"/company/members/{membership.public_id}/remove/"
    token = page_token(web, "/company/members/", url)

    sent_twice(web, url, {"once": token}, {"once": token})

    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_company_settings_sent_twice_are_saved_once(web: Client, company: Company) -> None:
    token = page_token(web, "/company/")
    form = {"name": "Renamed Ltd", "country": "GB", "tax_number": "", "once": token}

    sent_twice(web, "/company/", form, {**form, "name": "Something Else Ltd"})

    company.refresh_from_db()
    assert company.name == "Renamed Ltd"


def test_a_verification_request_sent_twice_is_submitted_once(web: Client, company: Company) -> None:
    token = page_token(web, "/company/verification/")
    details = {
        "legal_name": "Example Trading Limited",
        "registration_number": "01234567",
        "address_line1": "1 High Street",
        "city": "London",
        "postal_code": "EC1A 1AA",
        "country": "GB",
        "once": token,
    }

    def form(**changed: str) -> dict[str, Any]:
        document = SimpleUploadedFile("certificate.pdf", PDF, content_type="application/pdf")
        return {**details, **changed, "documents": [document]}

    sent_twice(web, "/company/verification/", form(), form(legal_name="Another Name Limited"))

    (request,) = VerificationRequest.objects.filter(company=company)
    assert request.legal_name == "Example Trading Limited"


def test_a_company_created_twice_is_created_once_under_the_users_token(web: Client, owner: Any) -> None:
    token = page_token(web, "/companies/new/")
    form = {"name": "Second Ltd", "country": "GB", "currency": "GBP", "once": token}

    sent_twice(web, "/companies/new/", form, {**form, "name": "Third Ltd"})

    names = set(Company.objects.filter(memberships__user=owner).values_list("name", flat=True))
    assert "Second Ltd" in names
    assert "Third Ltd" not in names
    assert Company.objects.filter(name__in=["Second Ltd", "Third Ltd"]).count() == 1
    (claim,) = OnceToken.objects.filter(key=token)
    assert (claim.user_id, claim.company_id) == (owner.pk, None)


def test_a_token_is_its_owners_so_another_user_sending_it_acts(web: Client, owner: Any, company: Company) -> None:
    token = page_token(web, "/companies/new/")
    form = {"name": "Second Ltd", "country": "GB", "currency": "GBP", "once": token}
    assert web.post("/companies/new/", form).status_code == 302
    someone = Client()
    someone.force_login(member(company, Role.VIEWER))

    assert someone.post("/companies/new/", {**form, "name": "Theirs Ltd"}).status_code == 302

    assert Company.objects.filter(name__in=["Second Ltd", "Theirs Ltd"]).count() == 2


def test_a_form_sent_back_with_an_error_leaves_its_token_free(web: Client, company: Company) -> None:
    token = page_token(web, "/company/members/")
    refused = web.post("/company/members/", {"email": "not an address", "role": Role.VIEWER, "once": token})
    assert refused.status_code == 400
    assert not OnceToken.objects.filter(key=token).exists()

    done = web.post("/company/members/", {"email": "new@example.com", "role": Role.VIEWER, "once": token})

    assert done.status_code == 302
    assert Invitation.objects.filter(company=company).count() == 1


def test_the_daily_purge_forgets_tokens_older_than_30_days(web: Client, company: Company) -> None:
    old = OnceToken.objects.create(endpoint="page:/company/", key="a" * 32, company=company, location="/company/")
    recent = OnceToken.objects.create(endpoint="page:/company/", key="b" * 32, company=company, location="/company/")
    OnceToken.objects.filter(pk=old.pk).update(created_at=timezone.now() - KEEP_FOR - timedelta(minutes=1))

    assert purge_idempotent_requests() == 1

    assert list(OnceToken.objects.values_list("pk", flat=True)) == [recent.pk]
