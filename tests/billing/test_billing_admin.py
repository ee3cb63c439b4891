from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from apps.billing.models import Charge, Price
from tests.factories import UserFactory, grant
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


def test_staff_edit_the_channel_price_and_new_charges_use_it(company, owner) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    price = Price.objects.get(kind="channel_monthly", currency="GBP")

    response = admin.post(
        "/staff/billing/price/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(price.pk),
            "form-0-amount": "9.50",
            "_save": "Save",
        },
        QUERY_STRING="kind__exact=channel_monthly&currency__exact=GBP",
    )
    grant(company, "100", "stripe:pi_admin")
    profile, _ = digest_profile(company, owner)

    assert response.status_code == 302
    price.refresh_from_db()
    assert price.amount == Decimal("9.50")
    assert profile.channel_changes.count() == 1
    assert Charge.objects.get(kind="channels").unit_price == Decimal("9.5")


def test_staff_read_the_ledger_but_cannot_change_it(company, owner) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    txn = grant(company, "10", "stripe:pi_admin2")

    assert admin.get("/staff/billing/ledgertransaction/").status_code == 200
    page = admin.get(f"/staff/billing/ledgertransaction/{txn.pk}/change/")
    assert page.status_code == 200
    assert "stripe:pi_admin2" in page.content.decode()
    assert admin.post(f"/staff/billing/ledgertransaction/{txn.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/staff/billing/charge/").status_code == 200
    assert admin.get("/staff/billing/ledgeraccount/").status_code == 200
