"""A receipt a business can file (issue 13, item 8): the seller's name, address, VAT/tax number
and e-mail from settings, the buyer's verified legal name and address, country, registration
and VAT/tax numbers, and every amount to 2 places; read back from the PDF's own text (pypdf)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.test import Client
from pypdf import PdfReader
from rest_framework.test import APIClient

from apps.companies.services import company_update, verification_approve, verification_submit
from apps.core.actor import Actor
from tests.billing.factories import populate_billing
from tests.companies.test_verification import DETAILS, pdf
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def text_of(content: bytes) -> str:
    assert content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


@pytest.fixture
def seller(settings: Any) -> Any:
    settings.SELLER_NAME = "Voice Trunks Ltd"
    settings.SELLER_ADDRESS = ("Unit 4, 12 Harbour Road", "Bristol BS1 5TT", "United Kingdom")
    settings.SELLER_TAX_NUMBER = "GB 987 6543 21"
    settings.SELLER_EMAIL = "billing@voicetrunks.example"
    return settings


def test_a_verified_companys_receipt_names_seller_and_buyer_with_their_tax_numbers(
    seller: Any, company: Any, owner: Any
) -> None:
    request = verification_submit(actor=Actor(user=owner), company=company, documents=[pdf()], **DETAILS)
    verification_approve(actor=Actor(user=UserFactory(is_staff=True)), request=request)
    company_update(actor=Actor(user=owner), company=company, tax_number="gb123 456 789")
    paid = populate_billing(company, owner)
    web = Client()
    web.force_login(owner)

    text = text_of(web.get(f"/credit/purchases/{paid.public_id}/receipt.pdf").content)

    for expected in (
        "Voice Trunks Ltd",
        "Unit 4, 12 Harbour Road",
        "Bristol BS1 5TT",
        "VAT / tax number: GB 987 6543 21",
        "billing@voicetrunks.example",
        "Billed to",
        "Example Trading Limited",
        f"Trading as {company.name}",
        "1 High Street",
        "EC1A 1AA London",
        "United Kingdom",
        "Registration number: 01234567",
        "VAT / tax number: GB123 456 789",
        "Total: 50.00 GBP",
    ):
        assert expected in text, (expected, text)
    assert re.search(r"Amount paid\s+50\.00 GBP", text), text
    assert "Skype Manager" not in text.replace("Prepaid credit for Skype Manager", "")
    # Every amount on it has exactly 2 places.
    amounts = re.findall(r"\b[0-9][0-9,]*\.[0-9]+ GBP", text)
    assert amounts
    assert all(re.fullmatch(r"[0-9,]+\.[0-9]{2} GBP", a) for a in amounts), amounts
    # The API's receipt is the same document.
    api = APIClient()
    api.force_authenticate(owner)
    assert "Voice Trunks Ltd" in text_of(api.get(f"/api/v1/credit/purchases/{paid.public_id}/receipt/").content)


def test_an_unverified_companys_receipt_has_its_name_and_country_and_the_seller_defaults_to_the_product(
    settings: Any, company: Any, owner: Any
) -> None:
    settings.PRODUCT_NAME = "Acme Voice"
    settings.SELLER_NAME = "Acme Voice"
    settings.SELLER_ADDRESS = ()
    settings.SELLER_TAX_NUMBER = ""
    settings.SELLER_EMAIL = ""
    paid = populate_billing(company, owner)
    web = Client()
    web.force_login(owner)

    text = text_of(web.get(f"/credit/purchases/{paid.public_id}/receipt.pdf").content)

    assert "Acme Voice" in text
    assert "Prepaid credit for Acme Voice SIP trunking" in text
    assert company.name in text
    assert "United Kingdom" in text
    assert "Registration number" not in text
    assert "VAT / tax number" not in text
    assert "Skype Manager" not in text


def test_the_company_sets_its_tax_number_on_its_settings_page_and_by_the_api(company: Any, owner: Any) -> None:
    web = Client()
    web.force_login(owner)
    saved = web.post("/company/", {"name": company.name, "country": "GB", "tax_number": " de 123456789 "})
    assert saved.status_code == 302
    company.refresh_from_db()
    assert company.tax_number == "DE 123456789"
    assert 'value="DE 123456789"' in web.get("/company/").content.decode()

    refused = web.post("/company/", {"name": company.name, "country": "GB", "tax_number": "<script>"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Enter the tax number as your tax office writes it" in html
    assert 'value="&lt;script&gt;"' in html

    api = APIClient()
    api.force_authenticate(owner)
    bad = api.patch("/api/v1/company/", {"tax_number": "#"}, format="json")
    assert bad.status_code == 400
    assert "tax_number" in bad.json()["errors"]
    good = api.patch("/api/v1/company/", {"tax_number": "FR12345678901"}, format="json")
    assert good.status_code == 200
    assert good.json()["tax_number"] == "FR12345678901"
    cleared = api.patch("/api/v1/company/", {"tax_number": ""}, format="json")
    assert cleared.json()["tax_number"] == ""
