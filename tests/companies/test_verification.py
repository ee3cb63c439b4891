from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.companies.models import Company, PurchasePolicy, VerificationRequest
from apps.companies.selectors import purchase_policy_for_company
from apps.companies.services import verification_approve, verification_reject, verification_submit
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.conftest import client_as
from tests.factories import UserFactory, member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DETAILS = {
    "legal_name": "Example Trading Limited",
    "registration_number": "01234567",
    "address_line1": "1 High Street",
    "city": "London",
    "postal_code": "EC1A 1AA",
    "country": "GB",
}


def pdf(name: str = "certificate.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True, email="staff@platform.example")


def test_an_unverified_company_may_buy_100_by_card_or_paypal(company) -> None:
    policy = purchase_policy_for_company(company)

    assert policy.tier == "unverified"
    assert policy.max_purchase == Decimal("100")
    assert policy.payment_methods == ("card", "paypal")


def test_submitting_through_the_api_makes_the_company_pending(company, owner) -> None:
    response = client_as(owner).post(
        "/api/v1/verification/", {**DETAILS, "documents": [pdf(), pdf("utility.pdf")]}, format="multipart"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert [d["name"] for d in body["latest_request"]["documents"]] == ["certificate.pdf", "utility.pdf"]
    assert body["if_verified"]["max_purchase"] == "5000.00"
    assert "bank_wire" in body["if_verified"]["payment_methods"]
    company.refresh_from_db()
    assert company.verification_status == "pending"
    assert AuditEvent.objects.filter(company=company, action="verification.submitted").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**DETAILS, "legal_name": ""}, "legal_name"),
        ({**DETAILS, "country": "XX"}, "country"),
        ({k: v for k, v in DETAILS.items() if k != "city"}, "city"),
        (DETAILS, "documents"),
    ],
)
def test_missing_or_bad_details_are_field_errors(company, owner, data, field) -> None:
    payload = dict(data)
    if field != "documents":
        payload["documents"] = [pdf()]

    response = client_as(owner).post("/api/v1/verification/", payload, format="multipart")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not VerificationRequest.objects.exists()


def test_a_file_that_is_not_a_pdf_or_image_is_refused_whatever_its_name(company, owner) -> None:
    fake = SimpleUploadedFile("cert.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")

    response = client_as(owner).post("/api/v1/verification/", {**DETAILS, "documents": [fake]}, format="multipart")

    assert response.status_code == 400
    assert "not a PDF, PNG or JPEG" in response.json()["errors"]["documents"][0]


def test_a_second_request_while_one_is_pending_is_a_conflict(company, owner) -> None:
    verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)

    response = client_as(owner).post("/api/v1/verification/", {**DETAILS, "documents": [pdf()]}, format="multipart")

    assert response.status_code == 409
    assert VerificationRequest.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_make_one_request() -> None:
    company = Company.objects.create(name="Twice Ltd", country="GB", currency="GBP")
    owner = member(company)

    def submit() -> str:
        verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
        return "ok"

    outcomes = run_concurrently(submit, submit, catch=(ApplicationError,))

    assert sorted(getattr(o, "code", o) for o in outcomes) == ["already_pending", "ok"]
    assert VerificationRequest.objects.filter(company=company).count() == 1


def test_staff_approval_raises_the_limit_and_unlocks_bank_wire(company, owner, staff) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    admin = Client()
    admin.force_login(staff)

    page = admin.get(f"/staff/companies/verificationrequest/{request.pk}/change/")
    assert "certificate.pdf" in page.content.decode()
    response = admin.post(f"/staff/companies/verificationrequest/{request.pk}/approve/")

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.verification_status == "verified"
    policy = purchase_policy_for_company(company)
    assert policy.tier == "verified"
    assert policy.max_purchase == Decimal("5000")
    assert policy.payment_methods == ("card", "paypal", "bank_wire")
    event = AuditEvent.objects.get(company=company, action="verification.approved")
    assert event.actor_user == staff


def test_staff_rejection_needs_a_reason_which_the_company_sees(company, owner, staff) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    admin = Client()
    admin.force_login(staff)

    empty = admin.post(f"/staff/companies/verificationrequest/{request.pk}/reject/", {"reason": ""})
    assert empty.status_code == 200
    request.refresh_from_db()
    assert request.status == "pending"

    admin.post(f"/staff/companies/verificationrequest/{request.pk}/reject/", {"reason": "The document is unreadable."})

    company.refresh_from_db()
    assert company.verification_status == "rejected"
    body = client_as(owner).get("/api/v1/verification/").json()
    assert body["latest_request"]["reason"] == "The document is unreadable."
    page = client_as(owner).get("/company/verification/").content.decode()
    assert "The document is unreadable." in page
    assert purchase_policy_for_company(company).max_purchase == Decimal("100")


def test_a_rejected_company_may_submit_again(company, owner, staff) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    verification_reject(actor=Actor(user=staff), request=request, reason="Blurry.")

    again = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)

    assert again.status == "pending"


def test_a_request_is_decided_only_once(company, owner, staff) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    verification_approve(actor=Actor(user=staff), request=request)

    with pytest.raises(ApplicationError):
        verification_reject(actor=Actor(user=staff), request=request, reason="Changed my mind")


def test_staff_can_override_one_companys_limit(company, owner, staff) -> None:
    admin = Client()
    admin.force_login(staff)

    response = admin.post(f"/staff/companies/company/{company.pk}/change/", {"purchase_limit_override": "750"})

    assert response.status_code == 302
    company.refresh_from_db()
    policy = purchase_policy_for_company(company)
    assert policy.max_purchase == Decimal("750")
    assert policy.limit_overridden
    assert AuditEvent.objects.filter(company=company, action="company.purchase_limit_overridden").exists()
    assert "750.00 GBP" in client_as(owner).get("/company/").content.decode()


def test_the_policies_are_staff_editable(company) -> None:
    PurchasePolicy.objects.filter(tier="unverified").update(max_purchase=Decimal("250"), allow_paypal=False)

    policy = purchase_policy_for_company(company)

    assert policy.max_purchase == Decimal("250")
    assert policy.payment_methods == ("card",)


def test_the_company_page_shows_tier_limit_and_what_verification_unlocks(company, owner) -> None:
    html = client_as(owner).get("/company/").content.decode()

    assert "Unverified" in html
    assert "100.00 GBP" in html
    assert "Verification would unlock" in html
    assert "5,000.00 GBP" in html
    assert "Bank wire" in html


def test_the_verification_page_submits_with_uploaded_files(company, owner) -> None:
    client = client_as(owner)
    response = client.post("/company/verification/", {**DETAILS, "documents": [pdf()]}, format="multipart")

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.verification_status == "pending"


def test_a_failed_page_submission_keeps_what_was_typed(company, owner) -> None:
    response = client_as(owner).post(
        "/company/verification/", {**DETAILS, "registration_number": ""}, format="multipart"
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Example Trading Limited"' in html
    assert "This field is required." in html


def test_verification_documents_are_served_only_to_staff(company, owner, staff) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    document = request.documents.get()
    admin = Client()
    admin.force_login(staff)

    assert client_as(owner).get(f"/staff/verification-documents/{document.public_id}/").status_code == 404
    served = admin.get(f"/staff/verification-documents/{document.public_id}/")
    assert served.status_code == 200
    assert served.content == PDF
