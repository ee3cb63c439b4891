from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone

from apps.billing.ledger.selectors import company_balance, profile_balances
from apps.billing.models import Charge, LedgerEntry
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import Cdr, CdrRating, PendingCdr
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
    # 300 of credit, less 150 allocated to the demo profile and its channels and bundle (prorated).
    paid = Charge.objects.filter(company=company, status="paid").aggregate(total=Sum("amount"))["total"]
    assert {c.kind for c in Charge.objects.filter(company=company)} == {"channels", "us_bundle"}
    assert company_balance(company) == Decimal("150") - paid
    # Its few calls were loaded and rated: a US call from the bundle, the rest from the profile's credit.
    statuses = sorted(CdrRating.objects.filter(cdr__call_id__startswith="demo-").values_list("status", flat=True))
    assert statuses == ["bundle", "rated", "rated", "rated", "zero_rated", "zero_rated"]
    profile = SipProfile.objects.get(company=company, name="Demo PBX")
    _the_month_of_calls_is_rated_and_reported(company, profile)
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


def _the_month_of_calls_is_rated_and_reported(company: Company, profile: SipProfile) -> None:
    """A month of calls, every one rated through the engine; the bundle, the profile's credit,
    the daily figures and the reports say the same."""
    cdrs = Cdr.objects.filter(company=company)
    assert not PendingCdr.objects.exists()
    assert cdrs.count() == CdrRating.objects.filter(cdr__company=company).count() > 1000
    month = cdrs.filter(call_id__startswith="month-")
    assert len({c.date() for c in month.values_list("started_at", flat=True)}) >= 30
    assert max(month.values_list("ended_at", flat=True)) < timezone.now()
    assert month.filter(refusal_reason="channel_limit").count() > 10
    assert month.filter(direction="inbound").count() > 50
    assert month.filter(answered_at__isnull=True).count() > 50
    statuses = dict(month.values_list("rating__status").annotate(n=Count("pk")).order_by())
    assert statuses["rated"] > 1000
    assert statuses["error"] >= 5  # no rate covers the number
    assert statuses["zero_rated"] > 100  # inbound, unanswered, refused
    ratings = CdrRating.objects.filter(cdr__company=company)
    costs = ratings.aggregate(cost=Sum("cost"), minutes=Sum("bundle_minutes"))
    assert BundlePeriod.objects.get(sip_profile=profile).minutes_used == costs["minutes"] >= 13
    assert profile_balances(company) == {profile.pk: Decimal("150") - costs["cost"]}
    assert profile_balances(company)[profile.pk] > 0
    calls_debited = LedgerEntry.objects.filter(account__sip_profile=profile, transaction__kind="call")
    assert calls_debited.aggregate(total=Sum("amount"))["total"] == -costs["cost"]

    # The reports of the months the calls fall in add up to every call and its cost.
    client = Client()
    client.force_login(company.memberships.get().user)
    months = sorted({d.strftime("%Y-%m") for d in month.values_list("started_at", flat=True)})
    totals = {"calls": 0, "cost": Decimal(0)}
    for key in months:
        usage = client.get("/api/v1/reports/usage/", {"month": key}).json()
        totals["calls"] += usage["total"]["calls"]
        totals["cost"] += Decimal(usage["total"]["cost"])
        assert usage["by_profile"][0]["label"] == "Demo PBX"
        summary = client.get("/api/v1/reports/summary/", {"month": key}).json()
        assert Decimal(summary["calls"]) == Decimal(usage["total"]["cost"])
        assert "Demo PBX" in client.get("/reports/usage/", {"month": key}).content.decode()
    assert totals == {"calls": cdrs.count(), "cost": costs["cost"]}
