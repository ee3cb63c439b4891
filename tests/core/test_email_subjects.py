"""Every kind of e-mail the product sends (issue 13, item 8) carries the product's name
(PRODUCT_NAME), never the host name, and a subject that says what happened, never a bare level
("Information"): allauth's (sign-up confirmation, password reset), invitations, verification
decisions, dashboard notices, auto-recharge failures. (The auto-recharge charge's e-mail is
checked in tests/billing/test_auto_recharge.py.)"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from apps.billing.tasks import send_auto_recharge_failure_email
from apps.companies.models import Role
from apps.companies.services import invitation_create, verification_approve, verification_reject, verification_submit
from apps.core.actor import Actor
from tests.billing.factories import populate_billing
from tests.companies.test_verification import DETAILS, pdf
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db

PRODUCT = "Acme Voice"
HOSTS = ("testserver", "127.0.0.1", "localhost", "skypemanager")
LEVELS = ("Information", "Info", "Warning", "Error")


@pytest.fixture
def product(settings: Any) -> Any:
    settings.PRODUCT_NAME = PRODUCT
    settings.ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PRODUCT}] "
    settings.SITE_URL = "https://portal.acme-voice.example"
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    return settings


def assert_says_what_happened(message: Any, *words: str) -> None:
    subject = message.subject
    assert subject.startswith(f"[{PRODUCT}] "), subject
    for host in HOSTS:
        assert host not in subject.lower(), subject
        assert f"from {host}" not in message.body.lower(), message.body
    what = subject.removeprefix(f"[{PRODUCT}] ").split(": ", 1)[-1]
    assert what not in LEVELS, subject
    assert len(what.split()) >= 3, subject
    for word in words:
        assert word in subject, (word, subject)
    assert "Skype Manager" not in subject + message.body


def test_allauths_emails_name_the_product_not_the_host(product: Any) -> None:
    client = Client()
    signed_up = client.post(
        "/accounts/signup/",
        {
            "email": "new.admin@example.org",
            "password1": "a-long-and-unusual-password-2026",
            "password2": "a-long-and-unusual-password-2026",
            "full_name": "New Admin",
            "company_name": "Brand New Ltd",
            "country": "GB",
            "currency": "GBP",
        },
    )
    assert signed_up.status_code == 302
    (confirmation,) = mail.outbox
    assert_says_what_happened(confirmation, "Confirm")
    assert f"Hello from {PRODUCT}!" in confirmation.body
    assert f"Thank you for using {PRODUCT}!" in confirmation.body

    mail.outbox.clear()
    Client().post("/accounts/password/reset/", {"email": "new.admin@example.org"})
    (reset,) = mail.outbox
    assert_says_what_happened(reset, "Password Reset")
    assert f"Hello from {PRODUCT}!" in reset.body


def test_invitations_and_verification_decisions_say_what_happened(
    product: Any, company: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    staff = Actor(user=UserFactory(is_staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(actor=Actor(user=owner), company=company, email="colleague@example.org", role=Role.VIEWER)
    (invitation,) = mail.outbox
    assert_says_what_happened(invitation, "invited you to", company.name)
    assert f"on {PRODUCT} as Viewer" in invitation.body

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        first = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
        verification_reject(actor=staff, request=first, reason="The certificate is not readable.")
    with django_capture_on_commit_callbacks(execute=True):
        second = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
        verification_approve(actor=staff, request=second)
    rejected, verified = (m for m in mail.outbox if m.to == [owner.email])
    assert_says_what_happened(rejected, "was not approved")
    assert_says_what_happened(verified, f"{company.name} is verified")


def test_notices_are_emailed_with_what_happened_not_their_level(
    product: Any, company: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    member(company, Role.BILLING)
    with django_capture_on_commit_callbacks(execute=True):
        purchase = populate_billing(company, owner)  # staff confirm a bank wire: a notice
    (wire,) = mail.outbox
    assert_says_what_happened(wire, company.name, f"Bank wire {purchase.wire_reference} received", "50.00 GBP")
    assert "https://portal.acme-voice.example/" in wire.body

    mail.outbox.clear()
    send_auto_recharge_failure_email(company.pk, "Auto-recharge could not charge 50.00 GBP: Your card was declined.")
    (failed,) = mail.outbox
    assert_says_what_happened(failed, "Auto-recharge could not charge 50.00 GBP")


def test_every_notice_in_the_code_is_given_a_subject() -> None:
    """A notice without a subject would be e-mailed with its first sentence; every caller
    says what happened itself."""
    root = Path(__file__).resolve().parents[2] / "apps"
    calls = 0
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "notice_create"
            ):
                calls += 1
                assert "subject" in {k.arg for k in node.keywords}, f"{path}:{node.lineno}: a notice without a subject"
    assert calls >= 15
