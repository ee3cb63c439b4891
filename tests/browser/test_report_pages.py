"""In Chromium (issue 14, item 3): an owner opens Reports from the navigation, pages through the
months, filters Usage by profile and downloads its CSV; each report draws its chart (Chart.js,
served by the app, under the Content-Security-Policy) above the same figures as a table, and
reads at 1280 and at 375 pixels wide (screenshots in test-results/screenshots/)."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from tests.browser.test_content_security_policy import watch_violations
from tests.factories import CompanyFactory, member
from tests.helpers.browser import TIMEOUT_MS, look_at_both_widths, sign_in
from tests.rating.factories import small_deck
from tests.reports.test_monthly_reports import NOW, world

EMAIL = "owner@reports.example"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_reads_each_report_of_the_month_at_both_widths(live_server: Any, page: Page) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    violations = watch_violations(page)
    with time_machine.travel(NOW, tick=True):
        company = CompanyFactory(name="Reports Calls Ltd", country="GB", currency="GBP")
        owner = member(company, Role.OWNER, email=EMAIL)
        small_deck()
        profiles = world(company, owner, profiles=3, calls=150)
        sign_in(page, base, EMAIL)

        page.get_by_role("link", name="Reports", exact=True).click()
        expect(page.locator("#report-title")).to_have_text("Where the credit went · March 2027")
        expect(page.locator("#report-chart")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#summary-lines tr[data-key=purchases] td").nth(1)).to_have_text("400.00 GBP")
        look_at_both_widths(page, "report-summary")

        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("link", name="Previous month").click()
        expect(page.locator("#report-title")).to_have_text("Where the credit went · February 2027")
        expect(page.get_by_role("link", name="Next month")).to_be_visible()
        page.get_by_role("link", name="Next month").click()
        expect(page.locator("#report-title")).to_contain_text("March 2027")
        expect(page.get_by_role("link", name="Next month")).to_have_count(0)  # April has not started

        page.locator(".report-tabs").get_by_role("link", name="Usage").click()
        expect(page.locator("#report-chart")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#usage-calls")).to_have_text("150")
        expect(page.locator("#usage-profiles tbody tr")).to_have_count(3)
        look_at_both_widths(page, "report-usage")

        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#report-profile").select_option(str(profiles[1].public_id))
        expect(page.locator("#report-title")).to_have_text("Usage · March 2027 · PBX 1")
        expect(page.locator("#usage-profiles tbody tr")).to_have_count(1)
        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        assert download.value.suggested_filename == f"report-usage-profile-{profiles[1].public_id}-2027-03.csv"

        page.locator(".report-tabs").get_by_role("link", name="Purchases").click()
        expect(page.locator("#purchases-list tbody tr")).to_have_count(2)
        look_at_both_widths(page, "report-purchases")

        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator(".report-tabs").get_by_role("link", name="Allocations").click()
        expect(page.locator("#report-chart")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#allocations-profiles tbody tr")).to_have_count(3)
        look_at_both_widths(page, "report-allocations")

        page.goto(f"{base}/reports/usage/?month=2027-13")
        expect(page.get_by_role("alert")).to_contain_text("Give the month as YYYY-MM")
    assert violations == []
