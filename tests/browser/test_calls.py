"""In Chromium (issue 14, item 2): a viewer opens Calls from the navigation, sees how each call
was paid with the call no rate covers marked, filters by profile (the filter stays in the
form), goes to older calls and back, downloads the CSV; the page reads at 1280 and 375 px."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from tests.cdrs.calls_data import make_calls
from tests.factories import CompanyFactory, member
from tests.helpers.browser import look_at_both_widths, sign_in
from tests.sip_profiles.factories import digest_profile, ip_profile

EMAIL = "viewer@calls.example"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_viewer_reads_filters_pages_and_downloads_the_calls(live_server: Any, page: Page, monkeypatch: Any) -> None:
    monkeypatch.setattr("apps.cdrs.views.PAGE_SIZE", 5)
    company = CompanyFactory(name="Calls Browser Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER)
    member(company, Role.VIEWER, email=EMAIL)
    profile, _ = digest_profile(company, owner, name="Head office PBX")
    branch = ip_profile(company, owner, name="Branch PBX")
    made = make_calls(profile, branch)
    base = live_server.url

    sign_in(page, base, EMAIL)
    page.locator("nav.sidebar").get_by_role("link", name="Calls").click()
    expect(page.locator("main h1")).to_have_text("Calls")
    rows = page.locator("#calls tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#calls tbody tr.marked").first).to_contain_text("Not rated yet")
    expect(page.locator("#calls")).to_contain_text("Credit at 0.012 GBP/min")
    expect(page.locator("#calls")).to_contain_text("All channels in use")
    look_at_both_widths(page, "calls")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(3)
    uncovered = page.locator('#calls tr[data-paid-by="not_rated"]')
    expect(uncovered).to_have_class("marked")
    expect(uncovered).to_contain_text("No GBP rate covers +882123456789")
    expect(page.locator("#calls")).to_contain_text("United Kingdom, London")
    look_at_both_widths(page, "calls-older")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(5)

    page.locator("select[name=profile]").select_option(label="Branch PBX")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Germany")
    expect(page.locator("select[name=profile]")).to_have_value(str(branch.public_id))

    with page.expect_download() as download:
        page.locator("#calls-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert [r["id"] for r in csv.DictReader(io.StringIO(text))] == [str(made.branch_call.public_id)]

    page.locator("input[name=number]").fill("abc")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#call-filters .error")).to_contain_text("Give 3 to 15 digits")
    expect(page.locator("input[name=number]")).to_have_value("abc")
    look_at_both_widths(page, "calls-bad-filter")
