"""Registering landlines as caller IDs and staff review: the rules at the database and service level."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.callerid.models import CallerIdCountry, Landline
from apps.callerid.selectors import caller_id_options
from apps.callerid.services import landline_approve, landline_register, landline_reject, landline_withdraw
from apps.companies.models import Company, Notice
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.callerid.factories import LANDLINE, landline, pdf, verify
from tests.factories import member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db


def register(company, owner, number, proof=None):
    return landline_register(actor=Actor(user=owner), company=company, number=number, proof=proof or pdf())


@pytest.fixture
def verified(company):
    return verify(company)


def test_an_unverified_company_cannot_register_a_landline(company, owner) -> None:
    with pytest.raises(ApplicationError) as error:
        register(company, owner, LANDLINE)

    assert error.value.code == "not_verified"
    assert "verified" in error.value.errors["number"][0]
    assert not Landline.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("020 7946 0958", "+442079460958"),  # national, read with the company's country (GB)
        ("+44 20 7946 0958", "+442079460958"),  # international
        ("+44 (0)20-7946-0958", "+442079460958"),
        ("+33 1 23 45 67 89", "+33123456789"),  # another supported country
        ("+1 212 555 0100", "+12125550100"),  # fixed line or mobile (US) counts as a landline
    ],
)
def test_a_landline_is_stored_in_e164(verified, owner, typed, stored) -> None:
    assert str(register(verified, owner, typed).number) == stored


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("not a number", "is not a phone number"),
        ("12", "too short"),
        ("0201", "lacks its area code"),
        ("020 7946 09581", "is too long"),
        ("0207946", "not a valid number"),
        ("+999 1234 5678", "country code"),
        ("0901 234 5678", "is a premium-rate number"),
        ("07400 123456", "is a mobile number"),
        ("0800 123 4567", "is a toll-free number"),
        ("+55 11 3456 7890", "Caller ID cannot be presented for numbers in Brazil"),
        ("", "Enter a phone number"),
    ],
)
def test_anything_but_a_landline_in_a_supported_country_is_a_field_error(verified, owner, typed, says) -> None:
    with pytest.raises(ApplicationError) as error:
        register(verified, owner, typed)

    assert says in error.value.errors["number"][0]
    assert not Landline.objects.exists()


def test_a_country_staff_add_becomes_supported(verified, owner) -> None:
    CallerIdCountry.objects.create(country="BR", note="Carrier agreement 2026")

    assert str(register(verified, owner, "+55 11 3456 7890").number) == "+551134567890"


def test_the_proof_must_be_a_pdf_or_image(verified, owner) -> None:
    fake = SimpleUploadedFile("bill.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")

    with pytest.raises(ApplicationError) as error:
        register(verified, owner, LANDLINE, proof=fake)

    assert "not a PDF, PNG or JPEG" in error.value.errors["proof"][0]


def test_a_missing_proof_and_a_bad_number_are_both_reported(verified, owner) -> None:
    with pytest.raises(ApplicationError) as error:
        landline_register(actor=Actor(user=owner), company=verified, number="07400 123456", proof=None)

    assert set(error.value.errors) == {"number", "proof"}


def test_a_registration_is_pending_audited_and_keeps_the_proof(verified, owner) -> None:
    registered = register(verified, owner, LANDLINE, proof=pdf("march-bill.pdf"))

    assert registered.status == Landline.Status.PENDING
    assert registered.proof_name == "march-bill.pdf"
    assert registered.submitted_by == owner
    assert registered.proof.read().startswith(b"%PDF")
    event = AuditEvent.objects.get(company=verified, action="landline.registered")
    assert event.changes["number"]["after"] == LANDLINE


def test_a_number_has_one_live_registration_per_company(verified, owner, other_company) -> None:
    register(verified, owner, LANDLINE)

    with pytest.raises(ApplicationError) as error:
        register(verified, owner, "020 7946 0958")
    assert error.value.code == "already_registered"
    # Another company may claim the same number: staff see both proofs.
    assert register(verify(other_company), member(other_company), LANDLINE).status == "pending"


def test_the_database_allows_one_live_registration_and_keeps_history(verified, owner) -> None:
    first = register(verified, owner, LANDLINE)

    with pytest.raises(IntegrityError), transaction.atomic():
        Landline.objects.create(company=verified, number=LANDLINE, proof="x.pdf", proof_name="x.pdf")
    landline_withdraw(actor=Actor(user=owner), landline=first)
    again = register(verified, owner, LANDLINE)

    assert again.status == "pending"
    assert Landline.objects.filter(company=verified, number=LANDLINE).count() == 2


def test_the_database_requires_an_expiry_when_verified_and_a_reason_when_rejected(verified, owner) -> None:
    registered = register(verified, owner, LANDLINE)

    with pytest.raises(IntegrityError), transaction.atomic():
        Landline.objects.filter(pk=registered.pk).update(status="verified")
    with pytest.raises(IntegrityError), transaction.atomic():
        Landline.objects.filter(pk=registered.pk).update(status="rejected", reason="")


@pytest.mark.django_db(transaction=True)
def test_two_registrations_of_the_same_number_at_once_make_one() -> None:
    company = verify(Company.objects.create(name="Twice Ltd", country="GB", currency="GBP"))
    owner = member(company)

    def run() -> str:
        register(company, owner, LANDLINE)
        return "ok"

    outcomes = run_concurrently(run, run, catch=(ApplicationError,))

    assert sorted(getattr(o, "code", o) for o in outcomes) == ["already_registered", "ok"]
    assert Landline.objects.filter(company=company).count() == 1


def test_approval_verifies_for_twelve_months_and_tells_the_company(
    verified, owner, staff, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    registered = register(verified, owner, LANDLINE)

    with time_machine.travel("2026-03-01 10:00:00+00:00", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            approved = landline_approve(actor=Actor(user=staff), landline=registered)

        assert approved.status == "verified"
        assert approved.verified_at == timezone.now()
        assert approved.expires_at == timezone.now() + timedelta(days=365)
        assert approved.reviewed_by == staff
        assert [o.e164 for o in caller_id_options(company=verified)] == [LANDLINE]
    assert Notice.objects.get(company=verified, kind="landline_verified")
    assert mailoutbox[-1].to == [owner.email]
    assert "+442079460958 is verified" in mailoutbox[-1].body


def test_a_landline_is_approved_only_while_pending(verified, owner, staff) -> None:
    approved = landline(verified, owner, approved_by=staff)

    with pytest.raises(ApplicationError) as error:
        landline_approve(actor=Actor(user=staff), landline=approved)

    assert error.value.code == "not_pending"


def test_a_rejection_needs_a_reason_which_the_company_is_told(
    verified, owner, staff, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    registered = register(verified, owner, LANDLINE)

    with pytest.raises(ApplicationError) as error:
        landline_reject(actor=Actor(user=staff), landline=registered, reason="  ")
    assert "reason" in error.value.errors
    with django_capture_on_commit_callbacks(execute=True):
        rejected = landline_reject(actor=Actor(user=staff), landline=registered, reason="The bill is unreadable.")

    assert rejected.status == "rejected"
    assert rejected.reason == "The bill is unreadable."
    assert "The bill is unreadable." in Notice.objects.get(company=verified, kind="landline_rejected").message
    assert "The bill is unreadable." in mailoutbox[-1].body


def test_a_withdrawn_or_rejected_landline_cannot_be_withdrawn_again(verified, owner, staff) -> None:
    registered = register(verified, owner, LANDLINE)
    landline_withdraw(actor=Actor(user=owner), landline=registered)

    with pytest.raises(ApplicationError):
        landline_withdraw(actor=Actor(user=owner), landline=registered)
    with pytest.raises(ApplicationError):
        landline_reject(actor=Actor(user=staff), landline=registered, reason="Too late")


def test_a_verified_landline_is_usable_only_while_the_company_is_verified(verified, owner, staff) -> None:
    landline(verified, owner, approved_by=staff)

    verified.verification_status = "unverified"
    verified.save()

    assert caller_id_options(company=verified) == []
