from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client

from apps.billing.ledger.selectors import company_balance, profile_balances
from apps.billing.models import Charge
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import CdrRating
from apps.companies.models import Company
from apps.numbers.models import OnlineNumber
from apps.rating.models import RateDeck
from apps.sip_profiles.models import SipProfile

pytestmark = pytest.mark.django_db


# Midday, and twenty minutes after midnight UTC on a day a profile renews: its bundle period is
# then only minutes old, and the demo's calls must still fall inside it.
@pytest.mark.parametrize("moment", ["2026-12-02T12:00:00+00:00", "2026-12-03T00:20:00+00:00"])
def test_the_demo_data_loads_twice_and_its_login_works(django_capture_on_commit_callbacks, moment: str) -> None:
    with time_machine.travel(datetime.fromisoformat(moment), tick=True):
        _load_the_demo_and_check_it(django_capture_on_commit_callbacks)


def _load_the_demo_and_check_it(django_capture_on_commit_callbacks) -> None:
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)

    company = Company.objects.get(name="Demo Telecom Ltd")
    # 100 of credit, less 20 allocated to the demo profile and its channels and bundle (prorated).
    paid = Charge.objects.filter(company=company, status="paid").aggregate(total=Sum("amount"))["total"]
    assert {c.kind for c in Charge.objects.filter(company=company)} == {"channels", "us_bundle"}
    assert company_balance(company) == Decimal("80") - paid
    # Its calls were loaded and rated: a US call from the bundle, the rest from the profile's credit.
    statuses = sorted(CdrRating.objects.values_list("status", flat=True))
    assert statuses == ["bundle", "rated", "rated", "rated", "zero_rated", "zero_rated"]
    profile = SipProfile.objects.get(company=company, name="Demo PBX")
    assert BundlePeriod.objects.get(sip_profile=profile).minutes_used == 13
    assert profile_balances(company) == {profile.pk: Decimal("20") - Decimal("0.4770")}
    assert OnlineNumber.objects.filter(status="available").count() == 8
    assert sorted(RateDeck.objects.filter(status="active").values_list("currency", flat=True)) == ["EUR", "GBP", "USD"]
    assert "owner@demo.example / demo-owner-password-2026" in out.getvalue()
    client = Client()
    response = client.post("/accounts/login/", {"login": "owner@demo.example", "password": "demo-owner-password-2026"})
    assert response.status_code == 302
    assert "Demo Telecom Ltd" in client.get("/").content.decode()


def test_the_staff_option_makes_a_separate_staff_user_and_prints_both_logins_at_the_site_url(settings) -> None:
    settings.SITE_URL = "http://127.0.0.1:8765"
    out = StringIO()
    call_command("seed_demo", "--staff", stdout=out)
    call_command("seed_demo", "--staff", stdout=out)

    owner = Company.objects.get(name="Demo Telecom Ltd").memberships.get().user
    assert (owner.email, owner.is_staff, owner.is_superuser) == ("owner@demo.example", False, False)
    staff = type(owner).objects.get(email="staff@demo.example")
    assert (staff.is_staff, staff.is_superuser, staff.memberships.count()) == (True, True, 0)
    printed = out.getvalue()
    assert "Sign in at http://127.0.0.1:8765/accounts/login/ as owner@demo.example" in printed
    assert "Platform staff: http://127.0.0.1:8765/staff/ as staff@demo.example / demo-staff-password-2026" in printed
    client = Client()
    response = client.post("/accounts/login/", {"login": "staff@demo.example", "password": "demo-staff-password-2026"})
    assert response.status_code == 302
    assert client.get("/staff/").status_code == 200
