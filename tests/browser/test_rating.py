"""End to end in Chromium (issue 5): an owner buys a US minute bundle on a profile's page (and
is told why a second one cannot be bought), platform staff load the edge's CDRs from a CSV in
the admin, the calls are rated right after the load, and the owner sees the bundle minutes used
and the profile's balance debited for the London call."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.billing.ledger.allocations import credit_allocate
from apps.billing.models import LedgerAccount
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import CdrRating
from apps.companies.models import Role
from apps.core.actor import Actor
from tests.cdrs.factories import cdr_csv, csv_row
from tests.factories import PASSWORD, CompanyFactory, UserFactory, grant, member
from tests.rating.factories import small_deck
from tests.sip_profiles.factories import digest_profile

EMAIL = "owner@rating.example"
STAFF = "staff@platform.example"
TIMEOUT_MS = 10_000


def sign_in(page: Page, base: str, email: str, path: str = "/accounts/login/") -> None:
    page.goto(f"{base}{path}")
    page.locator("#id_login, #id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bundle_minutes_and_balance_follow_the_calls_loaded_from_a_file(
    live_server: Any, page: Page, tmp_path: Path
) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    company = CompanyFactory(name="Rating Calls Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email=EMAIL)
    UserFactory(email=STAFF, is_staff=True, is_superuser=True)
    grant(company, "100", "stripe:pi_rating_browser")
    small_deck()  # GBP: New York 0.004/min, London 0.008/min, 60/60
    profile, _ = digest_profile(company, owner, name="Rated PBX")  # 2 channels
    credit_allocate(actor=Actor(user=owner), profile=profile, amount="10", key="browser-rating")

    # 1. The owner buys one bundle on the profile's page, then cannot buy two more.
    sign_in(page, base, EMAIL)
    expect(page).to_have_url(f"{base}/")
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    card = page.locator("#profile-bundles")
    expect(card.locator("#bundle-minutes")).to_contain_text("none this period")
    card.get_by_label("Bundles").fill("1")
    card.get_by_role("button", name="Buy").click()
    expect(card.locator("#quote-amount"), "the card names the price first").to_contain_text("GBP")
    card.locator("#confirm-button").click()
    expect(card.locator("#bundles-count")).to_contain_text("1 of at most 2")
    period = BundlePeriod.objects.get(sip_profile=profile)
    included = period.minutes_included
    assert 0 < included <= 5000
    expect(card.locator("#bundle-minutes")).to_contain_text(f"{included} left of {included}")

    card.get_by_label("Bundles").fill("2")
    card.get_by_role("button", name="Buy").click()
    expect(card.locator("#bundle-count-error")).to_contain_text("channels")
    assert BundlePeriod.objects.get(sip_profile=profile).bundles == 1

    # 2. Staff load the edge's CDRs: a 125 s call to New York (3 bundle minutes), a 120 s call
    # to London (0.0160 GBP at 0.008/min) and an inbound call (free).
    start = max(timezone.now() - timedelta(minutes=5), period.period_start)
    times = {
        "start": start.isoformat(),
        "answer": (start + timedelta(seconds=5)).isoformat(),
        "end": (start + timedelta(seconds=130)).isoformat(),
        "duration": "130",
        "billable": "125",
    }
    csv = tmp_path / "edge-cdrs.csv"
    csv.write_text(
        cdr_csv(
            csv_row(1, profile.public_id, callee="+12125550123", **times),
            csv_row(2, profile.public_id, callee="+442079460000", **{**times, "billable": "120"}),
            csv_row(3, profile.public_id, direction="inbound", callee="+442079460100", **times),
        )
    )
    staff = page.context.browser.new_page()  # type: ignore[union-attr]
    staff.set_default_timeout(TIMEOUT_MS)
    sign_in(staff, base, STAFF, path="/staff/login/?next=/staff/cdrs/cdr/import/")
    staff.locator("input[type=file]").set_input_files(str(csv))
    staff.get_by_role("button", name="Upload and load").click()
    expect(staff.locator("#import-result")).to_contain_text("Loaded 3 new CDRs")
    staff.close()

    # Rated right after the load: the bundle paid New York, the balance paid London.
    statuses = dict(CdrRating.objects.values_list("cdr__edge_id", "status"))
    assert statuses == {1: "bundle", 2: "rated", 3: "zero_rated"}

    # 3. The owner sees the minutes used and the balance debited.
    page.reload()
    expect(card.locator("#bundle-minutes")).to_contain_text(f"{included - 3} left of {included} · 3 used")
    expect(page.locator("#profile-balance")).to_contain_text("9.98 GBP")
    assert LedgerAccount.objects.get(sip_profile=profile).balance == Decimal("9.9840")
