"""The caller ID page (/caller-id/) and staff review in the Django admin."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.callerid.models import CallerIdCountry, Landline
from apps.callerid.services import landline_reject
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.sip_profiles.models import SipProfile
from tests.callerid.factories import LANDLINE, landline, pdf, verify
from tests.conftest import client_as
from tests.factories import member

pytestmark = pytest.mark.django_db

URL = "/caller-id/"


def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_the_page_has_its_url_name(db) -> None:
    assert reverse("callerid-list") == URL


def test_the_page_explains_the_rules_and_lists_the_countries(company, owner) -> None:
    html = client_as(owner).get(URL).content.decode()

    assert "Online Number" in html
    assert "Only <strong>verified companies</strong> may present their own landlines" in html
    assert "12 months" in html
    assert "United Kingdom" in html
    assert "Germany" in html
    assert "Brazil" not in html
    # Unverified: no form, a way to verification instead.
    assert 'name="proof"' not in html
    assert reverse("verification") in html


def test_the_page_lists_landlines_with_status_reason_and_usable_caller_ids(company, owner, staff) -> None:
    verify(company)
    used = landline(company, owner, approved_by=staff)
    rejected = landline(company, owner, "+442079460959")
    landline_reject(actor=Actor(user=staff), landline=rejected, reason="The bill is for another company.")
    SipProfile.objects.create(company=company, name="Office", auth_method="ip", caller_id_landline=used)

    html = client_as(owner).get(URL).content.decode()

    assert '<span class="badge verified">Verified</span>' in html
    assert '<span class="badge rejected">Rejected</span>' in html
    assert "Reason: The bill is for another company." in html
    assert "1 profile" in html
    options = html[html.index('id="caller-id-options"') : html.index('id="landlines"')]
    assert LANDLINE in options
    assert "+442079460959" not in options


def test_a_landline_is_registered_from_the_page(company, owner) -> None:
    verify(company)

    response = client_as(owner).post(URL, {"number": "020 7946 0958", "proof": pdf()}, format="multipart")

    assert response.status_code == 302
    assert str(Landline.objects.get().number) == LANDLINE


def test_a_refused_registration_shows_errors_inline_and_keeps_the_number(company, owner) -> None:
    verify(company)

    response = client_as(owner).post(URL, {"number": "0901 234 5678"}, format="multipart")

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_number_error"' in html
    assert "is a premium-rate number" in html
    assert 'id="id_proof_error"' in html
    assert 'value="0901 234 5678"' in html
    assert "choose the proof again" in html


def test_withdraw_asks_for_confirmation(company, owner) -> None:
    verify(company)
    registered = landline(company, owner)
    client = client_as(owner)

    html = client.get(URL).content.decode()
    response = client.post(reverse("callerid-withdraw", args=[registered.public_id]), follow=True)

    assert f'data-confirm="Withdraw {LANDLINE}?' in html
    assert "was withdrawn" in response.content.decode()
    assert Landline.objects.get().status == "withdrawn"


def test_a_viewer_sees_the_page_without_forms_and_cannot_post(company, owner) -> None:
    verify(company)
    registered = landline(company, owner)
    client = client_as(member(company, Role.VIEWER))

    html = client.get(URL).content.decode()

    assert LANDLINE in html
    assert "Register a landline" not in html
    assert "/withdraw/" not in html
    assert client.post(URL, {"number": LANDLINE, "proof": pdf()}, format="multipart").status_code == 403
    assert client.post(reverse("callerid-withdraw", args=[registered.public_id])).status_code == 403


def test_another_companys_landline_cannot_be_withdrawn(company, owner, other_company) -> None:
    verify(other_company)
    theirs = landline(other_company, member(other_company))

    response = client_as(owner).post(reverse("callerid-withdraw", args=[theirs.public_id]))

    assert response.status_code == 404
    assert Landline.objects.get().status == "pending"


def test_staff_approve_from_the_admin(company, owner, staff) -> None:
    verify(company)
    registered = landline(company, owner)
    admin = staff_client(staff)

    page = admin.get(f"/staff/callerid/landline/{registered.pk}/change/").content.decode()
    response = admin.post(f"/staff/callerid/landline/{registered.pk}/approve/")

    assert 'id="approve-landline"' in page
    assert "phone-bill.pdf" in page
    assert response.status_code == 302
    registered.refresh_from_db()
    assert registered.status == "verified"
    assert AuditEvent.objects.get(action="landline.approved").actor_user == staff


def test_staff_reject_from_the_admin_with_a_reason(company, owner, staff) -> None:
    verify(company)
    registered = landline(company, owner)
    admin = staff_client(staff)

    empty = admin.post(f"/staff/callerid/landline/{registered.pk}/reject/", {"reason": ""})
    registered.refresh_from_db()
    assert empty.status_code == 200
    assert registered.status == "pending"
    admin.post(f"/staff/callerid/landline/{registered.pk}/reject/", {"reason": "Blurry scan."})

    registered.refresh_from_db()
    assert registered.status == "rejected"
    assert "Blurry scan." in client_as(owner).get(URL).content.decode()


def test_a_get_on_approve_changes_nothing(company, owner, staff) -> None:
    verify(company)
    registered = landline(company, owner)

    staff_client(staff).get(f"/staff/callerid/landline/{registered.pk}/approve/")

    registered.refresh_from_db()
    assert registered.status == "pending"


def test_the_proof_is_served_only_to_staff(company, owner, staff) -> None:
    verify(company)
    png = SimpleUploadedFile("bill.png", b"\x89PNG\r\n\x1a\n fake image", content_type="image/png")
    from apps.callerid.services import landline_register

    registered = landline_register(actor=Actor(user=owner), company=company, number=LANDLINE, proof=png)
    url = reverse("landline-proof", args=[registered.public_id])

    assert client_as(owner).get(url).status_code == 404
    served = staff_client(staff).get(url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served.content.startswith(b"\x89PNG")


def test_staff_edit_the_caller_id_countries(db, staff) -> None:
    admin = staff_client(staff)

    assert admin.get("/staff/callerid/calleridcountry/").status_code == 200
    response = admin.post("/staff/callerid/calleridcountry/add/", {"country": "BR", "note": "New carrier"})

    assert response.status_code == 302
    assert CallerIdCountry.objects.filter(country="BR").exists()
