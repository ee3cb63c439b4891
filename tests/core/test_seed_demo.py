from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from apps.billing.selectors import company_balance
from apps.companies.models import Company
from apps.numbers.models import OnlineNumber
from apps.rating.models import RateDeck

pytestmark = pytest.mark.django_db


def test_the_demo_data_loads_twice_and_its_login_works(django_capture_on_commit_callbacks) -> None:
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)

    company = Company.objects.get(name="Demo Telecom Ltd")
    assert company_balance(company) == Decimal("100")
    assert OnlineNumber.objects.filter(status="available").count() == 8
    assert sorted(RateDeck.objects.filter(status="active").values_list("currency", flat=True)) == ["EUR", "GBP", "USD"]
    assert "owner@demo.example / demo-owner-password-2026" in out.getvalue()
    client = Client()
    response = client.post("/accounts/login/", {"login": "owner@demo.example", "password": "demo-owner-password-2026"})
    assert response.status_code == 302
    assert "Demo Telecom Ltd" in client.get("/").content.decode()
