"""In Chromium (issue 14, item 3): an owner opens Reports from the navigation, pages through the
months, filters Usage by profile and downloads its CSV, reads Channel peaks and Bundle usage;
each report draws its chart (Chart.js, served by the app, under the Content-Security-Policy)
above the same figures as a table, and reads at 1280 and at 375 pixels wide (screenshots in
test-results/screenshots/)."""

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
from tests.reports.test_bundle_usage import US_DECK
from tests.reports.test_bundle_usage import world as bundles_world
from tests.reports.test_channel_peaks import world as peaks_world
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

        page.locator(".report-tabs").get_by_role("link", name="Usage", exact=True).click()
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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_reads_channel_peaks_and_bundle_usage_at_both_widths(live_server: Any, page: Page) -> None:
    """The two planning reports: each profile's recommendation and the peak chart against the
    channels; each profile's bundle forecast, the burn-down chart and last month's what-ifs with
    the cheapest marked."""
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    violations = watch_violations(page)
    with time_machine.travel(NOW, tick=True):
        company = CompanyFactory(name="Planning Calls Ltd", country="GB", currency="GBP")
        owner = member(company, Role.OWNER, email="planner@reports.example")
        small_deck(rows=US_DECK)
        peaks_world(company, owner)
        bundles_world(company, owner)
        sign_in(page, base, "planner@reports.example")

        page.get_by_role("link", name="Reports", exact=True).click()
        page.locator(".report-tabs").get_by_role("link", name="Channel peaks").click()
        expect(page.locator("#report-title")).to_have_text("Channel peaks · March 2027")
        expect(page.locator("#report-chart")).to_have_attribute("data-drawn", "true")
        rows = page.locator("#peaks-profiles tbody tr")
        expect(rows).to_have_count(7)  # Busy, Quiet, Steady and the four bundle profiles
        busy = page.locator("#peaks-profiles tbody tr", has_text="Busy")
        expect(busy.locator(".recommendation")).to_have_text(
            "Add 2 channels: calls peaked at the cap on 4 of 19 days, 4 calls refused at the limit."
        )
        expect(busy).to_have_attribute("data-action", "add")
        expect(page.locator("#peaks-profiles tbody tr", has_text="Quiet").locator(".recommendation")).to_have_text(
            "Drop 5 channels: never above 3 in 20 days."
        )
        expect(page.locator("#peaks-chart-profile")).to_have_text("Busy")  # the one nearest its cap
        look_at_both_widths(page, "report-channel-peaks")

        page.set_viewport_size({"width": 1280, "height": 900})
        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        assert download.value.suggested_filename == "report-peaks-profile-2027-03.csv"

        page.locator(".report-tabs").get_by_role("link", name="Bundle usage").click()
        expect(page.locator("#report-title")).to_have_text("Bundle usage · March 2027")
        expect(page.locator("#report-chart")).to_have_attribute("data-drawn", "true")
        forecast = page.locator("#bundles-profiles tbody tr", has_text="Light").locator(".forecast")
        expect(forecast).to_have_text("Runs out about 27 Mar")
        expect(page.locator("#bundles-profiles tbody tr", has_text="Heavy").locator(".forecast")).to_have_text(
            "Ran out on 15 Mar"
        )
        # Busy, Quiet and Steady hold no bundles and called no US number in February: no table.
        expect(page.locator("table.what-if tr.cheapest")).to_have_count(4)
        heavy = page.locator("table.what-if", has_text="Heavy")
        expect(heavy.locator("tr.cheapest")).to_have_attribute("data-bundles", "2")
        look_at_both_widths(page, "report-bundle-usage")

        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#report-profile").select_option(label="Light")
        expect(page.locator("#report-title")).to_have_text("Bundle usage · March 2027 · Light")
        expect(page.locator("#bundles-profiles tbody tr")).to_have_count(1)
    assert violations == []
